//! openraft wiring: the one place that imports `openraft`. Declares the type config, starts a
//! raft node over the RocksDB store and the libp2p mesh, bootstraps or joins, proposes commands
//! (forwarding them to the leader), serves peers' raft RPCs, and runs the leader's autopilot.
//!
//! ```text
//!   api --propose(Command)--> leader? batcher --Batch--> Raft::client_write
//!     |    --> log_storage::append (fsync) --> commit --> state_machine::apply --> store, waiters
//!      \--> follower: forwarder --ForwardBatch--> leader's serve_forward_batch --> batcher
//!   peer raft RPC --> serve_rpc --> Raft::{append_entries, vote, install_snapshot}
//! ```

mod batcher;
mod forwarder;
mod log_storage;
mod network;
mod parking;
mod state_machine;

#[cfg(test)]
mod tests;

use crate::clock::Clock;
use crate::config::RaftConfig;
use crate::net;
use crate::sched::Waiters;
use crate::store::Store;
use openraft::{ChangeMembers, Raft as OpenRaft, ServerState};
use proto::command::{Batch, Command, Response};
use proto::mesh::{AssignWait, AssignWaited, NodeInfo, PeerRequest, PeerResponse, RaftRpcKind};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

openraft::declare_raft_types!(
    /// Colonymesh's raft types: batches of commands in, one response per command out, nodes
    /// described by `NodeInfo`.
    pub TypeConfig:
        D = Batch,
        R = Vec<Response>,
        NodeId = u64,
        Node = NodeInfo,
        SnapshotData = tokio::fs::File,
);

/// A node's id in the raft group, derived from its libp2p peer id.
pub type NodeId = u64;

/// Attempts to deliver one proposal while the leader changes; each waits for a leader.
const FORWARD_ATTEMPTS_MAX: usize = 10;
/// Longest a proposal waits to be committed: without a quorum (a minority partition) the
/// write is refused after this instead of hanging. Below `net::REQUEST_TIMEOUT`, so a
/// forwarded write's answer arrives before the forwarding request times out.
const COMMIT_WAIT: Duration = Duration::from_secs(8);
/// Longest a proposal takes in all, forwarding and retries included; below the 30 s client
/// timeout of our CLI and the `colonyos` crate.
const PROPOSE_WAIT: Duration = Duration::from_secs(12);
/// Longest an assign long-poll stays parked on the leader per `AwaitAssign`; the waiting node
/// parks it again until its client's timeout. With `PARKED_SETTLE_WAIT`, below
/// `net::REQUEST_TIMEOUT`.
pub const PARK_WAIT_MAX: Duration = Duration::from_secs(4);
/// After a parked poll's wait, how long its attempt being committed may take to settle.
const PARKED_SETTLE_WAIT: Duration = Duration::from_secs(4);
const _: () = assert!(PARK_WAIT_MAX.as_secs() + PARKED_SETTLE_WAIT.as_secs() < 10);

/// Why a proposal failed. `NotLeader` and `Unavailable` are operational; `Fatal` stops the node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no leader reachable (last known leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("write outcome unknown: {0}")]
    Unavailable(String),
    #[error("raft stopped: {0}")]
    Fatal(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::Error),
    #[error("raft configuration: {0}")]
    Config(String),
}

impl Error {
    /// The same failure again, for each of several waiters (the store error as its text).
    fn duplicate(&self) -> Error {
        match self {
            Error::NotLeader { leader } => Error::NotLeader { leader: *leader },
            Error::Unavailable(reason) => Error::Unavailable(reason.clone()),
            Error::Fatal(reason) => Error::Fatal(reason.clone()),
            Error::Store(error) => Error::Fatal(error.to_string()),
            Error::Config(reason) => Error::Config(reason.clone()),
        }
    }
}

/// The raft id of the node with libp2p peer id `peer_id`: the first 8 bytes of its SHA3-256.
pub fn node_id_of(peer_id: &str) -> NodeId {
    let digest = proto::crypto::sha3_hex(peer_id.as_bytes());
    u64::from_str_radix(&digest[..16], 16).expect("sha3 hex is valid hex")
}

/// The applied index of `store` and a digest of its whole state (`getstatedigestmsg`).
/// Reads every table: call it on a blocking thread.
pub fn state_digest(store: &Store) -> Result<(u64, String), String> {
    state_machine::state_digest(store).map_err(|e| e.to_string())
}

/// The raft index in an applied record as `Store::export_state_to` returns it (0: none).
pub fn applied_index(applied: Option<Vec<u8>>) -> Result<u64, String> {
    let (last_log_id, _) = state_machine::decode_applied(applied).map_err(|e| e.to_string())?;
    Ok(last_log_id.map_or(0, |id| id.index))
}

/// The applied record of a state that no raft log has produced (a restored backup): raft
/// starts its log afresh on top of it.
pub fn nothing_applied() -> Vec<u8> {
    let record: state_machine::Applied = (None, openraft::StoredMembership::default());
    serde_json::to_vec(&record).expect("the applied record always serializes")
}

/// A running raft node and what it needs to propose.
#[derive(Clone)]
pub struct RaftNode {
    /// The openraft handle; cheap to clone.
    raft: OpenRaft<TypeConfig>,
    /// Groups this node's proposals into entries while it leads.
    batcher: batcher::Batcher,
    /// Groups this node's proposals into forwarded batches while another node leads.
    forwarder: forwarder::Forwarder,
    /// Assign long-polls parked here while this node leads.
    parking: Arc<parking::Parking>,
    node_id: NodeId,
    /// Used to forward writes to the leader.
    net: net::Client,
    /// How long to wait for a leader between forwarding attempts.
    election_timeout: Duration,
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
        snapshot_max_chunk_size: config.snapshot_chunk_bytes,
        install_snapshot_timeout: config.snapshot_chunk_timeout_ms,
        ..openraft::Config::default()
    };
    config.validate().map_err(|e| Error::Config(e.to_string()))
}

fn fatal(error: impl std::fmt::Display) -> Error {
    Error::Fatal(error.to_string())
}

/// What a raft node works with.
pub struct Deps {
    pub store: Store,
    /// Local long-pollers, woken by applied commands.
    pub waiters: Arc<Waiters>,
    pub net: net::Client,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Stamps the commands the node proposes for parked long-polls.
    pub clock: Arc<dyn Clock>,
}

impl RaftNode {
    /// Starts raft for this node (`me`) over the store and the mesh. With `bootstrap` and a
    /// fresh store, it initializes a one-voter cluster of itself; otherwise it waits to be
    /// added.
    pub async fn start(
        config: &RaftConfig,
        deps: Deps,
        me: NodeInfo,
        bootstrap: bool,
    ) -> Result<RaftNode, Error> {
        let Deps {
            store,
            waiters,
            net,
            metrics,
            clock,
        } = deps;
        let node_id = node_id_of(&me.peer_id);
        let parking = Arc::new(parking::Parking::new(store.clone(), clock));
        let log_store = log_storage::LogStore::new(store.clone());
        let state_machine = state_machine::StateMachine::new(store, waiters, parking.clone());
        let network = network::MeshNetwork {
            client: net.clone(),
        };
        let raft_config = Arc::new(openraft_config(config)?);
        let raft = OpenRaft::new(node_id, raft_config, network, log_store, state_machine)
            .await
            .map_err(fatal)?;
        let election_timeout = Duration::from_millis(config.election_timeout_max_ms);
        let batcher = batcher::Batcher::start(raft.clone(), parking.clone(), metrics);
        parking.set_batcher(&batcher);
        tokio::spawn(drain_parked_on_leadership_loss(
            raft.clone(),
            node_id,
            parking.clone(),
        ));
        let node = RaftNode {
            batcher,
            forwarder: forwarder::Forwarder::start(net.clone(), raft.metrics()),
            parking,
            raft,
            node_id,
            net,
            election_timeout,
        };
        if bootstrap && !node.raft.is_initialized().await.map_err(fatal)? {
            node.raft
                .initialize(BTreeMap::from([(node_id, me)]))
                .await
                .map_err(fatal)?;
        }
        Ok(node)
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Waits until a leader is known, or `timeout`. Cancel-safe. Only a leader that counts
    /// this node as a member (voter or learner) contacts it, but a joining node learns the
    /// membership itself only once it has installed the leader's snapshot, which for a large
    /// state takes longer than any join timeout: it serves meanwhile, its reads waiting for
    /// the read index like any lagging replica's.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        self.raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader known")
            .await
            .map_err(|e| Error::Fatal(format!("waiting for the mesh: {e}")))?;
        Ok(())
    }

    /// True when this node currently believes it is the leader.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.node_id)
    }

    /// The leader's id and description, as this node last heard.
    fn leader(&self) -> Option<(NodeId, NodeInfo)> {
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        let info = metrics
            .membership_config
            .membership()
            .get_node(&leader)?
            .clone();
        Some((leader, info))
    }

    /// Proposes `command` on this node if it leads, else forwards it to the leader; waits until
    /// it is committed (fsynced on a majority) and applied there. Retries across a leader
    /// change (apply deduplicates client commands by request id). Cancel-safe for the caller,
    /// but the command may still be applied.
    pub async fn propose(&self, command: Command) -> Result<Response, Error> {
        // One deadline for everything, so an unreachable leader cannot stretch the wait.
        match tokio::time::timeout(PROPOSE_WAIT, self.propose_unbounded(command)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Unavailable(format!(
                "not committed within {PROPOSE_WAIT:?}: no quorum of voters reachable"
            ))),
        }
    }

    async fn propose_unbounded(&self, command: Command) -> Result<Response, Error> {
        let mut last_leader = None;
        for attempt in 0..FORWARD_ATTEMPTS_MAX {
            if attempt > 0 {
                self.wait_for_leader_change(last_leader).await;
            }
            let Some((leader, info)) = self.leader() else {
                continue;
            };
            last_leader = Some(leader);
            if leader == self.node_id {
                match self.propose_local(command.clone()).await {
                    // Our view of the leader was stale (e.g. just restarted): look again.
                    Err(Error::NotLeader { .. }) => continue,
                    other => return other,
                }
            }
            // A leader of a build that knows batches gets the command in the next batch.
            let forward = async {
                match self.net.speaks_v2(&info.peer_id) {
                    true => {
                        let to = forwarder::Leader {
                            peer_id: info.peer_id.clone(),
                            addrs: info.addrs.clone(),
                        };
                        self.forwarder.forward(to, command.clone()).await
                    }
                    false => {
                        let request = PeerRequest::Forward(command.clone());
                        self.net.request(&info.peer_id, &info.addrs, request).await
                    }
                }
            };
            // If another leader emerges while we wait (the old one died), ask the new one:
            // apply deduplicates the request id, so asking twice cannot apply twice.
            let outcome = tokio::select! {
                outcome = forward => outcome,
                () = self.new_leader_other_than(leader) => continue,
            };
            match outcome {
                Ok(PeerResponse::Forwarded(response)) => return Ok(response),
                Ok(PeerResponse::NotLeader { .. }) => continue,
                // Never delivered: safe to try again once a leader is reachable.
                Err(net::Error::NotSent { .. }) => continue,
                // The request may have reached the leader. Retrying is safe: apply answers a
                // repeated request id with the recorded response instead of applying it again.
                Err(net::Error::Unreachable { .. }) => continue,
                Ok(other) => return Err(Error::Unavailable(format!("leader answered {other:?}"))),
                Err(other) => return Err(Error::Unavailable(other.to_string())),
            }
        }
        Err(Error::NotLeader {
            leader: last_leader,
        })
    }

    async fn wait_for_leader_change(&self, previous: Option<NodeId>) {
        let wait = self.raft.wait(Some(self.election_timeout * 2));
        let changed = |m: &openraft::RaftMetrics<NodeId, NodeInfo>| {
            m.current_leader.is_some() && m.current_leader != previous
        };
        // A timeout just means "try again with what we know".
        let _ = wait.metrics(changed, "leader change").await;
    }

    /// Completes when this node learns of a leader other than `leader` (never, if none comes;
    /// callers race it against their work).
    async fn new_leader_other_than(&self, leader: NodeId) {
        let changed = |m: &openraft::RaftMetrics<NodeId, NodeInfo>| {
            m.current_leader.is_some_and(|l| l != leader)
        };
        if self
            .raft
            .wait(None)
            .metrics(changed, "new leader")
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }

    async fn propose_local(&self, command: Command) -> Result<Response, Error> {
        match tokio::time::timeout(COMMIT_WAIT, self.batcher.propose(command)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Unavailable(format!(
                "not committed within {COMMIT_WAIT:?}: no quorum of voters reachable"
            ))),
        }
    }

    /// Waits until this node has applied everything committed when the call began, asking the
    /// leader for its read index (so a read after it sees every write acknowledged before).
    /// Bounded by `COMMIT_WAIT`. Cancel-safe.
    pub async fn linearize(&self) -> Result<(), Error> {
        let mut index = None;
        // A leader that dies while asked answers nothing until its link is found dead: the
        // next leader is asked instead (a bounded number of times).
        for _ in 0..FORWARD_ATTEMPTS_MAX {
            match self.leader() {
                None => return Err(Error::NotLeader { leader: None }),
                Some((leader, _)) if leader == self.node_id => {
                    let confirmed =
                        tokio::time::timeout(COMMIT_WAIT, self.raft.ensure_linearizable()).await;
                    return match confirmed {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(error)) => Err(Error::Unavailable(error.to_string())),
                        Err(_) => Err(Error::Unavailable(
                            "read index not confirmed in time".into(),
                        )),
                    };
                }
                Some((leader, info)) => {
                    let asking =
                        self.net
                            .request(&info.peer_id, &info.addrs, PeerRequest::ReadIndex);
                    let answered = tokio::select! {
                        answered = asking => answered,
                        () = self.new_leader_other_than(leader) => continue,
                    };
                    match answered {
                        Ok(PeerResponse::ReadIndex { index: read }) => {
                            index = Some(read);
                            break;
                        }
                        Ok(other) => {
                            return Err(Error::Unavailable(format!("leader {leader}: {other:?}")))
                        }
                        Err(error) => return Err(Error::Unavailable(error.to_string())),
                    }
                }
            }
        }
        let Some(index) = index else {
            return Err(Error::Unavailable(
                "the leader kept changing while asked for a read index".into(),
            ));
        };
        self.raft
            .wait(Some(COMMIT_WAIT))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map(|_| ())
            .map_err(|e| Error::Unavailable(format!("catching up to read index {index}: {e}")))
    }

    /// Answers a follower's read-index request (leader only).
    pub async fn serve_read_index(&self) -> PeerResponse {
        if !self.is_leader() {
            return PeerResponse::NotLeader {
                leader: self.leader().map(|l| l.0),
            };
        }
        match tokio::time::timeout(COMMIT_WAIT, self.raft.ensure_linearizable()).await {
            Ok(Ok(read)) => PeerResponse::ReadIndex {
                index: read.map_or(0, |l| l.index),
            },
            Ok(Err(error)) => PeerResponse::Refused {
                reason: error.to_string(),
            },
            Err(_) => PeerResponse::Refused {
                reason: "read index not confirmed in time".into(),
            },
        }
    }

    /// Answers a forwarded write: proposes it if this node leads.
    pub async fn serve_forward(&self, command: Command) -> PeerResponse {
        match self.propose_local(command).await {
            Ok(response) => PeerResponse::Forwarded(response),
            Err(Error::NotLeader { leader }) => PeerResponse::NotLeader { leader },
            Err(error) => PeerResponse::Refused {
                reason: error.to_string(),
            },
        }
    }

    /// Answers a follower's batch of forwarded writes: proposes each if this node leads (they
    /// join the batcher's queue together, in order) and answers every outcome in order.
    pub async fn serve_forward_batch(&self, commands: Vec<Command>) -> PeerResponse {
        let proposals = commands.into_iter().map(|command| async move {
            match self.propose_local(command).await {
                Ok(response) => proto::mesh::Forwarded::Done(response),
                Err(Error::NotLeader { leader }) => proto::mesh::Forwarded::NotLeader { leader },
                Err(error) => proto::mesh::Forwarded::Unknown {
                    reason: error.to_string(),
                },
            }
        });
        PeerResponse::ForwardedBatch(futures::future::join_all(proposals).await)
    }

    /// An executor's assign long-poll: parked on the leader (here, or sent there) until a
    /// process is assigned to it or `wait.wait_ms` (at most `PARK_WAIT_MAX`) passes. `None`
    /// when the leader's build cannot park (the caller waits locally instead). Cancel-safe.
    pub async fn await_assign(&self, wait: AssignWait) -> Option<AssignWaited> {
        let Some((leader, info)) = self.leader() else {
            return Some(AssignWaited::NotLeader { leader: None });
        };
        if leader == self.node_id {
            return Some(self.serve_await_assign(wait).await);
        }
        if !self.net.speaks_v2(&info.peer_id) {
            return None;
        }
        let request = PeerRequest::AwaitAssign(wait);
        let asking = self.net.request(&info.peer_id, &info.addrs, request);
        // A leader that died holds the poll until its link is found dead (seconds, over
        // QUIC): once another leads, the poll's outcome there is unknown and it goes on there.
        let answered = tokio::select! {
            answered = asking => answered,
            () = self.new_leader_other_than(leader) => {
                return Some(AssignWaited::Unknown {
                    reason: format!("leader {leader} replaced while the long-poll was parked"),
                });
            }
        };
        Some(match answered {
            Ok(PeerResponse::AssignWaited(waited)) => waited,
            Ok(PeerResponse::NotLeader { leader }) => AssignWaited::NotLeader { leader },
            // Refused before anything was proposed (e.g. the leader's queue was full).
            Ok(PeerResponse::Refused { .. }) | Err(net::Error::NotSent { .. }) => {
                AssignWaited::NotLeader {
                    leader: Some(leader),
                }
            }
            Ok(other) => AssignWaited::Unknown {
                reason: format!("leader answered {other:?}"),
            },
            Err(error) => AssignWaited::Unknown {
                reason: error.to_string(),
            },
        })
    }

    /// Parks an assign long-poll here if this node leads (see `await_assign`).
    pub async fn serve_await_assign(&self, wait: AssignWait) -> AssignWaited {
        if !self.is_leader() {
            return AssignWaited::NotLeader {
                leader: self.leader().map(|l| l.0),
            };
        }
        let wait_for = Duration::from_millis(wait.wait_ms).min(PARK_WAIT_MAX);
        let Some(mut ticket) = self.parking.park(wait) else {
            return AssignWaited::Nothing;
        };
        let unknown = || AssignWaited::Unknown {
            reason: "the leader dropped the long-poll".into(),
        };
        tokio::select! {
            outcome = &mut ticket.outcome => return outcome.unwrap_or_else(|_| unknown()),
            () = tokio::time::sleep(wait_for) => {}
        }
        // The wait is over: take it out, unless an attempt is being committed (then its
        // outcome is awaited, taking it out if it is parked again meanwhile).
        let settle = async {
            loop {
                if self.parking.cancel(ticket.id) {
                    return AssignWaited::Nothing;
                }
                tokio::select! {
                    outcome = &mut ticket.outcome => return outcome.unwrap_or_else(|_| unknown()),
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        };
        match tokio::time::timeout(PARKED_SETTLE_WAIT, settle).await {
            Ok(outcome) => outcome,
            Err(_) => {
                self.parking.cancel(ticket.id);
                AssignWaited::Unknown {
                    reason: "the long-poll's assignment was not committed in time".into(),
                }
            }
        }
    }

    /// Assign long-polls parked here now.
    pub fn parked(&self) -> usize {
        self.parking.len()
    }

    /// Answers a peer's raft RPC.
    pub async fn serve_rpc(&self, kind: RaftRpcKind, body: &str) -> PeerResponse {
        fn reply<T: serde::Serialize, E: serde::Serialize>(result: Result<T, E>) -> PeerResponse {
            let (ok, body) = match result {
                Ok(value) => (true, serde_json::to_string(&value)),
                Err(error) => (false, serde_json::to_string(&error)),
            };
            match body {
                Ok(body) => PeerResponse::Raft { ok, body },
                Err(e) => PeerResponse::Refused {
                    reason: format!("encode raft reply: {e}"),
                },
            }
        }
        let bad = |e: serde_json::Error| PeerResponse::Refused {
            reason: format!("bad raft rpc: {e}"),
        };
        match kind {
            RaftRpcKind::AppendEntries => match serde_json::from_str(body) {
                Ok(rpc) => reply(self.raft.append_entries(rpc).await),
                Err(e) => bad(e),
            },
            RaftRpcKind::Vote => match serde_json::from_str(body) {
                Ok(rpc) => reply(self.raft.vote(rpc).await),
                Err(e) => bad(e),
            },
            RaftRpcKind::InstallSnapshot => match serde_json::from_str(body) {
                Ok(rpc) => reply(self.raft.install_snapshot(rpc).await),
                Err(e) => bad(e),
            },
        }
    }

    /// Adds `node_id` as a learner (a no-op for members): on the leader directly, else by
    /// relaying the join to the leader. Cancel-safe.
    pub async fn add_learner(&self, node_id: NodeId, info: NodeInfo) -> Result<(), String> {
        if node_id != node_id_of(&info.peer_id) {
            return Err("node id does not match the peer id".into());
        }
        let known = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            metrics
                .membership_config
                .membership()
                .get_node(&node_id)
                .is_some()
        };
        if known {
            return Ok(());
        }
        if !self.is_leader() {
            let Some((leader, leader_info)) = self.leader() else {
                return Err("no leader known".into());
            };
            let request = PeerRequest::Join {
                node_id,
                info,
                token: None,
            };
            return match self
                .net
                .request(&leader_info.peer_id, &leader_info.addrs, request)
                .await
            {
                Ok(PeerResponse::Joined { .. }) => Ok(()),
                Ok(other) => Err(format!("leader {leader} answered {other:?}")),
                Err(e) => Err(format!("relay join to leader {leader}: {e}")),
            };
        }
        match self.raft.add_learner(node_id, info, false).await {
            Ok(_) => Ok(()),
            Err(error) => Err(error.to_string()),
        }
    }

    /// On the leader: every member with its role, site and replication lag.
    pub fn leader_view(&self) -> Option<Vec<MemberState>> {
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.current_leader != Some(self.node_id) || metrics.state != ServerState::Leader {
            return None;
        }
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let last = metrics.last_log_index.unwrap_or(0);
        let replication = metrics.replication.clone().unwrap_or_default();
        let members = membership
            .nodes()
            .map(|(id, info)| {
                let matched = match *id == self.node_id {
                    true => last,
                    false => replication
                        .get(id)
                        .cloned()
                        .flatten()
                        .map_or(0, |l| l.index),
                };
                MemberState {
                    id: *id,
                    peer_id: info.peer_id.clone(),
                    site: info.site.clone(),
                    voter: voters.contains(id),
                    lag: last.saturating_sub(matched),
                }
            })
            .collect();
        Some(members)
    }

    fn voters(&self) -> BTreeSet<NodeId> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }

    async fn set_voters(&self, voters: BTreeSet<NodeId>) -> Result<(), String> {
        let change = ChangeMembers::ReplaceAllVoters(voters);
        self.raft
            .change_membership(change, true)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Makes learner `id` a voter (leader only).
    pub async fn promote(&self, id: NodeId) -> Result<(), String> {
        let mut voters = self.voters();
        voters.insert(id);
        self.set_voters(voters).await
    }

    /// Replaces voter `dead` by learner `with`; `dead` stays a learner (leader only).
    pub async fn replace_voter(&self, dead: NodeId, with: NodeId) -> Result<(), String> {
        let mut voters = self.voters();
        voters.remove(&dead);
        voters.insert(with);
        self.set_voters(voters).await
    }

    /// Removes non-voter `id` from the mesh (leader only).
    pub async fn remove_node(&self, id: NodeId) -> Result<(), String> {
        let change = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
        self.raft
            .change_membership(change, false)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Graceful leave of the leader: hands its vote to a learner (if any) and leaves the voter
    /// set, so another voter takes over before this node stops. Bounded; best effort.
    pub async fn step_down(&self) {
        let Some(view) = self.leader_view() else {
            return;
        };
        let voters = self.voters();
        if voters.len() <= 1 {
            return;
        }
        let replacement = view
            .iter()
            .filter(|m| !m.voter)
            .min_by_key(|m| m.lag)
            .map(|m| m.id);
        let mut next = voters;
        next.remove(&self.node_id);
        next.extend(replacement);
        let leave = self.set_voters(next);
        match tokio::time::timeout(COMMIT_WAIT, leave).await {
            Ok(Ok(())) => tracing::info!("stepped down as leader and voter"),
            Ok(Err(error)) => tracing::warn!("failed to step down: {error}"),
            Err(_) => tracing::warn!("failed to step down in time"),
        }
    }

    /// The mesh as this node sees it: members with roles, and who leads.
    pub fn cluster(&self, served_by: &str) -> proto::mesh::ClusterReply {
        use proto::mesh::{ClusterNode, ClusterReply};
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let replication = metrics.replication.clone().unwrap_or_default();
        let nodes: Vec<ClusterNode> = membership
            .nodes()
            .map(|(id, info)| {
                let (host, apiport) = match info.api_addr.rsplit_once(':') {
                    Some((host, port)) => (host.to_string(), port.parse().unwrap_or(0)),
                    None => (info.api_addr.clone(), 0),
                };
                let matched = match (metrics.current_leader == Some(*id), replication.get(id)) {
                    (true, _) => metrics.last_log_index,
                    (false, Some(log_id)) => Some(log_id.map(|l| l.index).unwrap_or(0)),
                    (false, None) => None,
                };
                ClusterNode {
                    name: info.name.clone(),
                    host,
                    apiport,
                    nodeid: *id,
                    peerid: info.peer_id.clone(),
                    site: info.site.clone(),
                    role: if voters.contains(id) {
                        "voter"
                    } else {
                        "learner"
                    }
                    .to_string(),
                    addrs: info.addrs.clone(),
                    matchedindex: matched,
                    ..ClusterNode::default()
                }
            })
            .collect();
        let leader = nodes
            .iter()
            .find(|n| Some(n.nodeid) == metrics.current_leader)
            .cloned();
        ClusterReply {
            nodes,
            leader,
            servedby: served_by.to_string(),
            term: metrics.current_term,
            lastlogindex: metrics.last_log_index,
            appliedindex: metrics.last_applied.map(|l| l.index),
            changing: membership.get_joint_config().len() > 1,
        }
    }

    /// The peer ids of every member of the mesh (voters and learners).
    pub fn member_peers(&self) -> Vec<String> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let peers = membership
            .nodes()
            .map(|(_, info)| info.peer_id.clone())
            .collect();
        peers
    }

    /// True when `peer_id` belongs to a member of the mesh (voter or learner).
    pub fn is_member_peer(&self, peer_id: &str) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let found = membership.nodes().any(|(_, info)| info.peer_id == peer_id);
        found
    }

    /// This node's raft role as a word.
    pub fn role(&self) -> &'static str {
        let metrics = self.raft.metrics().borrow().clone();
        let voter = metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == self.node_id);
        match (metrics.state, voter) {
            (ServerState::Leader, _) => "leader",
            (ServerState::Candidate, _) => "candidate",
            (_, true) => "follower",
            (_, false) => "learner",
        }
    }

    /// Summary figures for status and health.
    pub fn status(&self) -> Status {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        Status {
            node_id: self.node_id,
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index,
            applied_index: metrics.last_applied.map(|id| id.index),
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
        }
    }

    /// Stops raft and waits for its tasks to end.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.raft.shutdown().await.map_err(fatal)
    }
}

/// Answers every parked long-poll "not the leader" when this node stops leading (their next
/// park goes to the new leader). Ends when raft stops.
async fn drain_parked_on_leadership_loss(
    raft: OpenRaft<TypeConfig>,
    node_id: NodeId,
    parking: Arc<parking::Parking>,
) {
    let mut metrics = raft.metrics();
    let mut leading = false;
    while metrics.changed().await.is_ok() {
        let (now_leading, leader) = {
            let m = metrics.borrow();
            let leads = m.state == ServerState::Leader && m.current_leader == Some(node_id);
            (leads, m.current_leader)
        };
        if leading && !now_leading {
            parking.drain(leader);
        }
        leading = now_leading;
    }
}

/// A member as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberState {
    pub id: NodeId,
    pub peer_id: String,
    pub site: String,
    pub voter: bool,
    /// Log entries behind the leader.
    pub lag: u64,
}

/// A raft node's state at a glance.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    pub node_id: NodeId,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
}
