//! Messages between mesh nodes, carried by the libp2p request-response protocol
//! `MESH_PROTOCOL`. Raft RPC bodies are openraft types, which `proto` does not know: they travel
//! as JSON text that only the raft module encodes and decodes.

use crate::command::{Command, Response};
use serde::{Deserialize, Serialize};

/// The request-response protocol name.
pub const MESH_PROTOCOL: &str = "/colonymesh/rpc/1";
/// Version 2 of the mesh protocol: one long-lived stream per peer and direction carrying
/// framed, numbered requests and responses (the same envelope, in CBOR), plus requests an
/// older build cannot decode (`ForwardBatch`, `AwaitAssign`). A node uses it with the peers
/// that announce it (by identify) and version 1, with only version 1's requests, with the
/// others: a mesh of mixed builds keeps working during a rolling upgrade.
pub const MESH_PROTOCOL_V2: &str = "/colonymesh/pipe/2";

/// Which raft RPC a `RaftRpc` carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftRpcKind {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

/// What a node can find out about another to reach it and place it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeInfo {
    /// libp2p peer id (base58).
    pub peer_id: String,
    /// Multiaddrs the node listens on.
    pub addrs: Vec<String>,
    /// Human name of the node.
    pub name: String,
    /// Site label (voters are spread over sites).
    pub site: String,
    /// `host:port` of the node's ColonyOS API.
    pub api_addr: String,
}

/// A request from one node to another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PeerRequest {
    /// A raft RPC; `body` is the JSON of the openraft request.
    Raft { kind: RaftRpcKind, body: String },
    /// A client write to propose on the leader.
    Forward(Command),
    /// Client writes to propose on the leader, answered together in order (version 2).
    ForwardBatch(Vec<Command>),
    /// An executor's assign long-poll, parked on the leader until a process is assigned to it
    /// or `wait_ms` passes (version 2).
    AwaitAssign(AssignWait),
    /// Asks the leader for a read index: the commit index a linearizable read must see.
    ReadIndex,
    /// A node asks to join the mesh as a learner, presenting a join token (first join) or
    /// its certificate (in the envelope, on a rejoin).
    Join {
        node_id: u64,
        info: NodeInfo,
        token: Option<String>,
    },
}

/// The answer to a `PeerRequest`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PeerResponse {
    /// JSON of the openraft response (or of its error).
    Raft { ok: bool, body: String },
    /// The forwarded command's response.
    Forwarded(Response),
    /// One outcome per command of a `ForwardBatch`, in order.
    ForwardedBatch(Vec<Forwarded>),
    /// What became of an `AwaitAssign`.
    AssignWaited(AssignWaited),
    /// The leader's read index.
    ReadIndex { index: u64 },
    /// The receiver is not the leader; try `leader` (raft id) if known.
    NotLeader { leader: Option<u64> },
    /// Joined (as a learner, or already a member), with the certificate issued to a new
    /// node (none when the joiner was already certified or the join was relayed).
    Joined { certificate: Option<Certificate> },
    /// The request was refused; `reason` says why.
    Refused { reason: String },
}

/// What became of one forwarded command of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Forwarded {
    /// Committed and applied: the command's response.
    Done(Response),
    /// The receiver does not lead (the command was not proposed); `leader` if known.
    NotLeader { leader: Option<u64> },
    /// Proposed, but the outcome is unknown (e.g. not committed in time); `reason` says why.
    Unknown { reason: String },
}

/// An assign long-poll handed to the leader, which proposes `Op::AssignFor { key, .. }`
/// commands for it when matching work is submitted or enqueued (at most
/// `ASSIGN_ATTEMPTS_MAX` per `AwaitAssign`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignWait {
    /// The executor's id (recovered from its signature by the node it polls).
    pub caller: String,
    pub colonyname: String,
    pub cpu_millis: Option<i64>,
    pub mem_mib: Option<i64>,
    /// The long-poll's key (`Op::AssignFor`), the same for every `AwaitAssign` of one
    /// long-poll: chosen by the node the executor polls.
    pub key: String,
    /// How long the leader keeps it parked; 0 tries once.
    pub wait_ms: u64,
    /// An earlier attempt's outcome is unknown: propose one at once (it answers the process
    /// an earlier one assigned, if any) instead of waiting for work first.
    pub resume: bool,
}

/// `AssignFor` commands proposed for one `AwaitAssign` at most.
pub const ASSIGN_ATTEMPTS_MAX: u8 = 8;

/// The outcome of an `AssignWait`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AssignWaited {
    /// An `Assign` was applied: its response (a process, or a refusal).
    Answered(Response),
    /// Nothing was assigned within the wait; certain.
    Nothing,
    /// The receiver does not lead; nothing was proposed.
    NotLeader { leader: Option<u64> },
    /// An attempt was proposed and its outcome is unknown (e.g. the leader changed).
    Unknown { reason: String },
    /// The leader does not park long-polls now (some member's build cannot apply
    /// `AssignFor`); the waiting node waits for work itself.
    Unsupported,
}

/// One member in `getclustermsg`'s reply: ColonyOS's `Node` fields plus the mesh's own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    pub name: String,
    pub host: String,
    /// ColonyOS's etcd ports; a mesh has none (0).
    pub port: i64,
    pub peerport: i64,
    pub relayport: i64,
    pub apiport: i64,
    pub nodeid: u64,
    pub peerid: String,
    pub site: String,
    /// `voter` or `learner`.
    pub role: String,
    pub addrs: Vec<String>,
    /// The leader's replication progress for this node (known on the leader only).
    pub matchedindex: Option<u64>,
    /// Milliseconds since this node's status gossip was last heard (none: never).
    pub lastheardms: Option<u64>,
    /// Heard by gossip recently.
    pub up: bool,
    /// Version the node reports by gossip.
    pub version: String,
    /// Applied log index the node reports by gossip.
    pub appliedindex: Option<u64>,
    /// The node's last gossiped status (machine, executors); none if never heard.
    #[serde(default)]
    pub status: Option<NodeStatus>,
}

/// Reply of `getclustermsg`, as seen by the node that served it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterReply {
    pub nodes: Vec<ClusterNode>,
    pub leader: Option<ClusterNode>,
    /// Name of the node that answered, and its raft view.
    pub servedby: String,
    pub term: u64,
    pub lastlogindex: Option<u64>,
    pub appliedindex: Option<u64>,
    /// A membership change is in flight (a joint configuration: `voter` then means a voter
    /// of the old or the new set, and both majorities are needed).
    #[serde(default)]
    pub changing: bool,
}

/// A source address a node refuses after repeated failed authentications.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// `api` or `p2p`.
    pub side: String,
    pub source: String,
    pub remainingseconds: u64,
    /// Failed authentications that led to the ban.
    pub failures: u32,
}

/// Reply of `getbansmsg` and `removebanmsg` (Colonymesh extensions, server owner only): the
/// bans of the node that answered (bans are per node and kept in memory).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BansReply {
    pub servedby: String,
    pub bans: Vec<Ban>,
    /// For `removebanmsg`: how many bans were lifted (one per side).
    #[serde(default)]
    pub lifted: usize,
}

/// Reply of `getdashboardmsg` (a Colonymesh extension, server owner only): where the node's
/// dashboard is and the key its data endpoints require.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardReply {
    pub servedby: String,
    /// The page's path on the API port, e.g. `/ui/`.
    pub path: String,
    pub key: String,
}

/// Reply of `getstatedigestmsg` (a Colonymesh extension, server owner only): a digest of the
/// node's whole replicated state at the applied index it was read at. Nodes at the same applied
/// index must report the same digest; the fault-injection checker relies on it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDigestReply {
    /// Name of the node that answered.
    pub servedby: String,
    /// Applied log index the digest was taken at (0: nothing applied yet).
    pub appliedindex: u64,
    /// Hex SHA3-256 of every state table, read from one consistent point in time.
    pub digest: String,
}

/// A node certificate: the mesh root's Ed25519 signature over the node's peer id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub mesh_id: String,
    pub peer_id: String,
    /// When it was issued (Unix seconds).
    pub issued_unix: i64,
    /// Hex Ed25519 signature of `Certificate::signed_text`.
    pub signature: String,
}

impl Certificate {
    /// The exact text the root signs.
    pub fn signed_text(mesh_id: &str, peer_id: &str, issued_unix: i64) -> String {
        format!("colonymesh-certificate/1\n{mesh_id}\n{peer_id}\n{issued_unix}")
    }
}

/// What a join token grants: joining `mesh_id` until `expires_unix`. The token carries the
/// root public key, so a new node learns whom to trust from the operator who gave it the token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    pub mesh_id: String,
    /// Hex Ed25519 public key of the mesh root.
    pub root_public_key: String,
    pub expires_unix: i64,
    /// Makes every token distinct.
    pub nonce: String,
}

/// Every request between nodes: the sender's certificate (none before it has joined) and
/// the request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerEnvelope {
    pub certificate: Option<Certificate>,
    pub request: PeerRequest,
}

/// The gossipsub topic on which nodes publish their status.
pub const STATUS_TOPIC: &str = "colonymesh/status/1";

/// What a node says about itself by gossip every few seconds (never through the raft log).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub peer_id: String,
    pub site: String,
    pub version: String,
    /// `leader`, `follower`, `learner` or `candidate`.
    pub role: String,
    pub applied_index: Option<u64>,
    pub uptime_seconds: u64,
    /// The machine (fields added after the first release default when absent).
    #[serde(default)]
    pub cpus: u32,
    /// Load averages over 1, 5 and 15 minutes, times 1000.
    #[serde(default)]
    pub load_milli: [u64; 3],
    #[serde(default)]
    pub memory_total_bytes: u64,
    #[serde(default)]
    pub memory_available_bytes: u64,
    /// The file system holding the node's data.
    #[serde(default)]
    pub disk_total_bytes: u64,
    #[serde(default)]
    pub disk_available_bytes: u64,
    /// The node's built-in executors.
    #[serde(default)]
    pub executors: Vec<ExecutorStatus>,
    /// The newest kinds of command its build applies (`node::state::APPLY_LEVEL`; absent in
    /// builds before levels: 0). A leader proposes a command of a level only when every
    /// member reports at least that level.
    #[serde(default)]
    pub apply_level: u32,
}

/// A built-in executor as its node reports it by gossip.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorStatus {
    pub name: String,
    pub executortype: String,
    pub colonyname: String,
    pub executorid: String,
    /// `starting`, `ready`, `waiting for approval`, or `error: ...`.
    pub state: String,
    /// Processes it is running now.
    pub running: u32,
}
