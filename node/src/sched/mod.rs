//! Local scheduling support: the registry of long-polling executors on this node and how
//! committed events wake them. Matching itself happens in `state` (inside apply), so two
//! nodes can never hand one process to two executors; this module only decides who retries.

mod waiters;

pub use waiters::{Ticket, TooManyWaiters, Waiters, PASS_ON_MAX};
