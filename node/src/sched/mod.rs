//! Local scheduling support: the registry of long-polling executors on this node and how
//! committed events wake them. Matching itself happens in `state` (inside apply), so two
//! nodes can never hand one process to two executors; this module only decides who retries.
//! Also the feed of committed changes that realtime subscribers follow.

mod feed;
mod waiters;

pub use feed::{
    Feed, Missed, Subscription, TooManySubscriptions, FEED_CAPACITY, SUBSCRIPTIONS_MAX,
};
pub use waiters::{Slot, Ticket, TooManyWaiters, Waiters, PASS_ON_MAX};
