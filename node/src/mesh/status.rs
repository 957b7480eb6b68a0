//! Node health by gossip: every node publishes a `NodeStatus` on the status topic each
//! `status_ms`; every node keeps the latest status heard from each mesh member (the fleet
//! view). Nothing here goes through the raft log, except the leader's `release_lost`: the
//! running processes of a node silent past `mesh.release_executors_ms` are re-queued.

use crate::clock;
use crate::clock::Clock;
use crate::exec::Executors;
use crate::net;
use crate::raft::RaftNode;
use crate::shutdown::Signal;
use proto::command::{Command, Op};
use proto::mesh::{NodeInfo, NodeStatus};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Statuses heard by gossip, by peer id. Bounded by the mesh size: only members are kept.
#[derive(Default)]
pub struct Fleet {
    statuses: Mutex<HashMap<String, (NodeStatus, Instant)>>,
}

impl Fleet {
    /// Records a gossiped status from `source` if it is a mesh member and names itself.
    pub fn heard(&self, raft: &RaftNode, source: &str, data: &[u8]) {
        let Ok(status) = serde_json::from_slice::<NodeStatus>(data) else {
            tracing::debug!(%source, "undecodable status gossip");
            return;
        };
        if status.peer_id != source || !raft.is_member_peer(source) {
            return;
        }
        let mut statuses = self.statuses.lock().expect("fleet lock");
        statuses.insert(source.to_string(), (status, clock::monotonic()));
        statuses.retain(|peer, _| raft.is_member_peer(peer));
    }

    /// True when every member of the mesh (as `raft` knows it) has reported, by its latest
    /// status, a build that applies commands of `level` (this node: its own build's level,
    /// before its first status). A member not heard from counts as one that does not.
    pub fn mesh_applies(&self, raft: &RaftNode, level: u32) -> bool {
        let me = raft.node_id();
        let statuses = self.statuses.lock().expect("fleet lock");
        raft.member_peers().iter().all(|peer| {
            let own = crate::raft::node_id_of(peer) == me;
            own && crate::state::APPLY_LEVEL >= level
                || statuses
                    .get(peer)
                    .is_some_and(|(s, _)| s.apply_level >= level)
        })
    }

    /// How long ago each member's last status arrived, with the status.
    pub fn view(&self) -> HashMap<String, (NodeStatus, Duration)> {
        let now = clock::monotonic();
        let statuses = self.statuses.lock().expect("fleet lock");
        statuses
            .iter()
            .map(|(peer, (s, at))| {
                (
                    peer.clone(),
                    (s.clone(), now.saturating_duration_since(*at)),
                )
            })
            .collect()
    }
}

/// What a node's status is made of besides raft: its machine and its executors.
pub struct Sources {
    /// The node's data dir (its disk is reported).
    pub data_dir: PathBuf,
    pub executors: Executors,
}

/// Publishes this node's status every `period` until `stop`. Cancel-safe.
pub async fn publish(
    raft: RaftNode,
    net: net::Client,
    me: NodeInfo,
    fleet: Arc<Fleet>,
    sources: Sources,
    period: Duration,
    stop: Signal,
) {
    let started = clock::monotonic();
    let mut ticker = stop.every(period);
    while ticker.tick().await {
        let host = crate::host::facts(&sources.data_dir);
        let status = NodeStatus {
            name: me.name.clone(),
            peer_id: me.peer_id.clone(),
            site: me.site.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            role: raft.role().to_string(),
            applied_index: raft.status().applied_index,
            uptime_seconds: clock::monotonic()
                .saturating_duration_since(started)
                .as_secs(),
            cpus: host.cpus,
            load_milli: host.load_milli,
            memory_total_bytes: host.memory_total_bytes,
            memory_available_bytes: host.memory_available_bytes,
            disk_total_bytes: host.disk_total_bytes,
            disk_available_bytes: host.disk_available_bytes,
            executors: sources.executors.statuses(),
            apply_level: crate::state::APPLY_LEVEL,
        };
        let data = serde_json::to_vec(&status).expect("status serializes");
        // A node hears itself too, so its own row in the fleet view is fresh.
        fleet.heard(&raft, &me.peer_id, &data);
        if let Err(error) = net.publish_status(data).await {
            tracing::debug!("status gossip not sent: {error}");
        }
    }
}

/// On the leader, every `period`: the executors of a node silent past `silent` lose their
/// running processes, which go back to the queue (one `ReleaseExecutors` per silence; the
/// executors stay registered and resume when their node returns).
pub async fn release_lost(
    raft: RaftNode,
    fleet: Arc<Fleet>,
    clock: Arc<dyn Clock>,
    silent: Duration,
    period: Duration,
    stop: Signal,
) {
    // Nodes whose executors were released during their current silence.
    let mut released: BTreeSet<String> = BTreeSet::new();
    let mut ticker = stop.every(period);
    while ticker.tick().await {
        if !raft.is_leader() {
            continue;
        }
        let me = raft.node_id();
        for (peer, (status, ago)) in fleet.view() {
            if ago < silent || crate::raft::node_id_of(&peer) == me {
                released.remove(&peer);
                continue;
            }
            if released.contains(&peer) || status.executors.is_empty() {
                continue;
            }
            let executor_ids = status
                .executors
                .iter()
                .map(|e| e.executorid.clone())
                .collect();
            let command = Command {
                now_nanos: clock.now_nanos(),
                request_id: clock.request_id(),
                caller_id: String::new(),
                op: Op::ReleaseExecutors { executor_ids },
            };
            match raft.propose(command).await {
                Ok(response) => {
                    tracing::warn!(node = %status.name, silent_ms = ago.as_millis() as u64,
                        ?response, "node silent: its executors' processes re-queued");
                    released.insert(peer);
                }
                Err(error) => tracing::warn!("failed to release executors: {error}"),
            }
        }
    }
}
