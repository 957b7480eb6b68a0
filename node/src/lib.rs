//! `node`: the Colonymesh node library. Every machine runs the same binary (`colonymesh`),
//! built from this crate's `main.rs`, which only parses the CLI and calls `cli::run`.
//!
//! # Layout
//! - `state`: the replicated state machine's logic, sans IO (`apply`, queries, roles).
//! - `store`: RocksDB: the raft log and the state tables (the only `rocksdb` importer).
//! - `raft`: openraft wiring: type config, storage, network (the only `openraft` importer).
//! - `sched`: local long-poll waiters, woken one per enqueued process.
//! - `api`: the ColonyOS HTTP API (the only `axum` importer).
//! - `node`: `Node::start` wires everything and owns the background tasks.
//! - `config`, `clock`: typed config, injected time and randomness.
//! - `exec`: built-in executors (shell, Docker, the node's own fleet functions).
//! - `host`: facts about the machine (the only module reading /proc and calling libc).
//! - `client`: a ColonyOS API client over HTTP (used by the CLI and tests).
//! - `cli`: the `colonymesh` command line.

pub mod api;
pub mod backup;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod exec;
pub mod guard;
pub mod host;
pub mod mesh;
pub mod metrics;
pub mod net;
pub mod node;
pub mod raft;
pub mod sched;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod tls;
pub mod trust;
