//! openraft wiring: the one place that imports `openraft`. Declares the type config, starts a
//! raft node over the RocksDB store, bootstraps a one-voter cluster, and proposes commands.
//!
//! ```text
//!   api --propose(Command)--> Raft::client_write --> log_storage::append (fsync)
//!                                                 --> commit --> state_machine::apply
//!                                                              --> state::apply --> store
//!                                                              --> sched::Waiters (events)
//! ```

mod log_storage;
mod network;
mod state_machine;

#[cfg(test)]
mod tests;

use crate::config::RaftConfig;
use crate::sched::Waiters;
use crate::store::Store;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft as OpenRaft};
use proto::command::{Command, Response};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

openraft::declare_raft_types!(
    /// Colonymesh's raft types: commands in, responses out.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// A node's id in the raft group.
pub type NodeId = u64;

/// Why a proposal failed. `NotLeader` and `Timeout` are operational; `Fatal` stops the node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("this node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("raft stopped: {0}")]
    Fatal(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::Error),
    #[error("raft configuration: {0}")]
    Config(String),
}

/// A running raft node and what it needs to propose.
#[derive(Clone)]
pub struct RaftNode {
    /// The openraft handle; cheap to clone.
    raft: OpenRaft<TypeConfig>,
    node_id: NodeId,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("node_id", &self.node_id)
            .finish()
    }
}

fn openraft_config(config: &RaftConfig) -> Result<openraft::Config, Error> {
    let config = openraft::Config {
        cluster_name: "colonymesh".to_string(),
        heartbeat_interval: config.heartbeat_ms,
        election_timeout_min: config.election_timeout_min_ms,
        election_timeout_max: config.election_timeout_max_ms,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_logs),
        max_in_snapshot_log_to_keep: config.snapshot_logs_kept,
        max_payload_entries: config.append_entries_max,
        ..openraft::Config::default()
    };
    config.validate().map_err(|e| Error::Config(e.to_string()))
}

impl RaftNode {
    /// Starts raft over `store`; on a fresh store, bootstraps a one-voter cluster of this node.
    /// Committed entries' events go to `waiters`.
    pub async fn start(
        config: &RaftConfig,
        store: Store,
        waiters: Arc<Waiters>,
    ) -> Result<RaftNode, Error> {
        let node_id = config.node_id;
        let log_store = log_storage::LogStore::new(store.clone());
        let state_machine = state_machine::StateMachine::new(store, waiters);
        let raft = OpenRaft::new(
            node_id,
            Arc::new(openraft_config(config)?),
            network::NoPeers,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| Error::Fatal(e.to_string()))?;
        let node = RaftNode { raft, node_id };
        if !node
            .raft
            .is_initialized()
            .await
            .map_err(|e| Error::Fatal(e.to_string()))?
        {
            let members = BTreeMap::from([(node_id, BasicNode::default())]);
            node.raft
                .initialize(members)
                .await
                .map_err(|e| Error::Fatal(e.to_string()))?;
        }
        Ok(node)
    }

    /// Waits until this node is leader with everything committed applied, or `timeout`.
    /// Cancel-safe.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        let node_id = self.node_id;
        self.raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader == Some(node_id), "leader elected")
            .await
            .map_err(|e| Error::Fatal(format!("waiting for leadership: {e}")))?;
        Ok(())
    }

    /// True when this node currently believes it is the leader.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.node_id)
    }

    /// Proposes `command` and waits until it is committed (fsynced) and applied, returning
    /// its response. Cancel-safe for the caller, but the command may still be applied.
    pub async fn propose(&self, command: Command) -> Result<Response, Error> {
        match self.raft.client_write(command).await {
            Ok(written) => Ok(written.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(Error::NotLeader {
                    leader: forward.leader_id,
                })
            }
            Err(RaftError::APIError(other)) => Err(Error::Fatal(other.to_string())),
            Err(RaftError::Fatal(fatal)) => Err(Error::Fatal(fatal.to_string())),
        }
    }

    /// Summary figures for health and server info.
    pub fn status(&self) -> Status {
        let metrics = self.raft.metrics().borrow().clone();
        Status {
            node_id: self.node_id,
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index,
            applied_index: metrics.last_applied.map(|id| id.index),
        }
    }

    /// Stops raft and waits for its tasks to end.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| Error::Fatal(e.to_string()))
    }
}

/// A raft node's state at a glance.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    pub node_id: NodeId,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
}
