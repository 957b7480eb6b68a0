//! Node health by gossip: every node publishes a `NodeStatus` on the status topic each
//! `status_ms`; every node keeps the latest status heard from each mesh member (the fleet
//! view). Nothing here goes through the raft log.

use crate::clock;
use crate::net;
use crate::raft::RaftNode;
use crate::shutdown::Signal;
use proto::mesh::{NodeInfo, NodeStatus};
use std::collections::HashMap;
use std::sync::Mutex;
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

/// Publishes this node's status every `period` until `stop`. Cancel-safe.
pub async fn publish(
    raft: RaftNode,
    net: net::Client,
    me: NodeInfo,
    fleet: std::sync::Arc<Fleet>,
    period: Duration,
    stop: Signal,
) {
    let started = clock::monotonic();
    let mut ticker = stop.every(period);
    while ticker.tick().await {
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
        };
        let data = serde_json::to_vec(&status).expect("status serializes");
        // A node hears itself too, so its own row in the fleet view is fresh.
        fleet.heard(&raft, &me.peer_id, &data);
        if let Err(error) = net.publish_status(data).await {
            tracing::debug!("status gossip not sent: {error}");
        }
    }
}
