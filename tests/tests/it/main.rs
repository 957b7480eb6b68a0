//! The single integration test binary: one module per topic.

mod api;
mod authz;
mod backup;
mod bad_input;
mod cli;
mod cluster;
mod colonyos_crate;
mod dashboard;
mod exec;
mod observe;
mod restart;
mod tidy;
mod tls;
