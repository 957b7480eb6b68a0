//! Colonymesh's fault-injection suite as a library: the mesh of local node processes, the
//! namespace network, the workload, the nemesis, the history and its checker. The
//! `colonymesh-chaos` binary (`main.rs`) wires them into one run.

pub mod checker;
pub mod history;
pub mod mesh;
pub mod nemesis;
pub mod netns;
pub mod workload;
