//! `proto`: the wire boundary of Colonymesh. ColonyOS messages and objects with their exact
//! JSON shapes, the signed envelope, the identity crypto and the replicated commands.
//!
//! It depends on no runtime (no tokio, libp2p, openraft or rocksdb), so a client can use it.
//!
//! # Layout
//! - `crypto`: secp256k1 + SHA3-256 signing, recovery and ids.
//! - `envelope`: `RpcMsg` / `RpcReply` / `Failure` and payload encoding.
//! - `msgs`: request payload structs and the closed `Request` enum.
//! - `blueprint`, `channel`, `colony`, `cron`, `executor`, `file`, `function`, `process`,
//!   `workflow`: the ColonyOS objects.
//! - `command`: replicated `Command` / `Op` / `Reply` applied by the state machine.
//! - `mesh`: requests and responses between mesh nodes.
//! - `error`: `ErrorCode` and `ApiError`; `failures`: the failures ColonyOS also has, in its
//!   words (`ColonyosFailure`).
//! - `gotime`, `lenient`, `units`: Go-compatible time, null-tolerant decoding, quantities.

pub mod blueprint;
pub mod channel;
pub mod colony;
pub mod command;
pub mod cron;
pub mod crypto;
pub mod envelope;
pub mod error;
pub mod executor;
pub mod failures;
pub mod file;
pub mod function;
pub mod gotime;
pub mod lenient;
pub mod mesh;
pub mod msgs;
pub mod process;
pub mod units;
pub mod workflow;

pub use colony::{Colony, Statistics, User};
pub use command::{Batch, Command, Op, Reply, Response};
pub use cron::{Cron, Generator};
pub use crypto::PrivateKey;
pub use envelope::{Failure, RpcMsg, RpcReply};
pub use error::{ApiError, ErrorCode};
pub use executor::Executor;
pub use function::{Function, Location, Log};
pub use gotime::GoTime;
pub use msgs::Request;
pub use process::{Attribute, Conditions, FunctionSpec, Process};
pub use workflow::{ProcessGraph, WorkflowSpec};
