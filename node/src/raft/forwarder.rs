//! Write forwarding on a follower: commands proposed concurrently on a node that does not lead
//! travel to the leader together, in one `ForwardBatch` request, instead of one libp2p request
//! each. As in the leader's batcher, a lone command leaves at once; batches form only while
//! earlier ones are in flight, so batching adds no latency at low load.
//!
//! ```text
//!   propose (follower) --Pending--> queue --run: gather while FORWARDS_IN_FLIGHT_MAX are out-->
//!       net ForwardBatch --> leader: serve_forward_batch --> batcher --> one outcome each
//! ```

use super::batcher::encoded_len;
use super::{NodeId, TypeConfig};
use crate::net;
use openraft::RaftMetrics;
use proto::command::Command;
use proto::mesh::{Forwarded, PeerRequest, PeerResponse};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most commands in one forwarded batch (the leader's batcher takes up to 256 per entry).
const FORWARD_COMMANDS_MAX: usize = 256;
/// A batch takes no more commands once their JSON reaches this size; far below the mesh
/// message limit (`net::MESSAGE_BYTES_MAX`).
const FORWARD_BYTES_MAX: usize = 512 << 10;
/// Batches sent and not yet answered. While all are out, new commands wait and leave together.
const FORWARDS_IN_FLIGHT_MAX: usize = 4;
/// Commands waiting to be forwarded; a full queue makes proposers wait (bounded by their
/// timeout).
const QUEUE_MAX: usize = 4096;

/// What one forwarded command came to, as a single `Forward` request would have answered.
pub(super) type Outcome = Result<PeerResponse, net::Error>;

/// Raft's metrics (who leads), to give up on a batch sent to a leader that has been replaced.
pub(super) type Metrics = tokio::sync::watch::Receiver<
    RaftMetrics<NodeId, <TypeConfig as openraft::RaftTypeConfig>::Node>,
>;

/// One command waiting to be forwarded to `leader`.
struct Pending {
    leader: Leader,
    command: Command,
    bytes: usize,
    outcome: oneshot::Sender<Outcome>,
}

/// Where a batch goes: the leader's peer id and addresses.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Leader {
    pub(super) peer_id: String,
    pub(super) addrs: Vec<String>,
}

/// The proposing side; cheap to clone.
#[derive(Clone)]
pub(super) struct Forwarder {
    queue: mpsc::Sender<Pending>,
}

impl Forwarder {
    /// Starts the forwarding task; it ends when the last `Forwarder` clone is dropped.
    pub(super) fn start(net: net::Client, raft: Metrics) -> Forwarder {
        let (queue, waiting) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(run(net, raft, waiting));
        Forwarder { queue }
    }

    /// Forwards `command` to `leader` in the next batch and waits for its own outcome. Not
    /// bounded in time (callers bound it); cancel-safe, but the command may still be applied.
    pub(super) async fn forward(&self, leader: Leader, command: Command) -> Outcome {
        let (outcome, answer) = oneshot::channel();
        let pending = Pending {
            leader,
            bytes: encoded_len(&command),
            command,
            outcome,
        };
        self.queue
            .send(pending)
            .await
            .map_err(|_| net::Error::Stopped)?;
        answer.await.map_err(|_| net::Error::Stopped)?
    }
}

/// Takes the first waiting command, waits for a free in-flight slot, adds whatever else is
/// waiting for the same leader (up to the limits) and sends the batch on its own task.
async fn run(net: net::Client, raft: Metrics, mut waiting: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(FORWARDS_IN_FLIGHT_MAX));
    // A command for another leader (a leader change) found while gathering: it starts the next
    // batch.
    let mut held: Option<Pending> = None;
    loop {
        let first = match held.take() {
            Some(first) => first,
            None => match waiting.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // A proposer that gave up meanwhile was told the outcome is unknown: drop its command.
        if first.outcome.is_closed() {
            continue;
        }
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < FORWARD_COMMANDS_MAX && bytes < FORWARD_BYTES_MAX {
            let Ok(next) = waiting.try_recv() else {
                break;
            };
            if next.outcome.is_closed() {
                continue;
            }
            if next.leader != batch[0].leader {
                held = Some(next);
                break;
            }
            bytes += next.bytes;
            batch.push(next);
        }
        let (net, raft) = (net.clone(), raft.clone());
        tokio::spawn(async move {
            send(&net, raft, batch).await;
            drop(slot);
        });
    }
}

/// Completes once another node than `leader` leads (never while it does).
async fn replaced(mut raft: Metrics, leader: &Leader) {
    loop {
        let other = {
            let metrics = raft.borrow();
            let membership = metrics.membership_config.membership();
            metrics
                .current_leader
                .and_then(|id| membership.get_node(&id))
                .is_some_and(|node| node.peer_id != leader.peer_id)
        };
        if other || raft.changed().await.is_err() {
            return;
        }
    }
}

/// Sends one batch and tells each command its outcome. A batch to a leader that is replaced
/// meanwhile is given up (its slot freed at once, not when the dead link is noticed); the
/// proposers ask the new leader, and apply's deduplication keeps a command from applying
/// twice.
async fn send(net: &net::Client, raft: Metrics, batch: Vec<Pending>) {
    let leader = batch[0].leader.clone();
    let (commands, outcomes): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|p| (p.command, p.outcome)).unzip();
    let count = commands.len();
    let request = PeerRequest::ForwardBatch(commands);
    let answered = tokio::select! {
        answered = net.request(&leader.peer_id, &leader.addrs, request) => answered,
        () = replaced(raft, &leader) => Err(net::Error::Unreachable {
            peer: leader.peer_id.clone(),
            reason: "another node leads now".into(),
        }),
    };
    let each: Vec<Outcome> = match answered {
        Ok(PeerResponse::ForwardedBatch(results)) if results.len() == count => {
            results.into_iter().map(|r| Ok(single(r))).collect()
        }
        Ok(PeerResponse::ForwardedBatch(results)) => {
            let reason = format!("{} outcomes for a batch of {count}", results.len());
            vec![Ok(PeerResponse::Refused { reason }); count]
        }
        // A refusal or redirect of the whole batch applies to each command.
        Ok(other) => vec![Ok(other); count],
        Err(error) => vec![Err(error); count],
    };
    for (outcome, result) in outcomes.into_iter().zip(each) {
        let _ = outcome.send(result);
    }
}

/// The answer a lone `Forward` of the command would have had.
fn single(result: Forwarded) -> PeerResponse {
    match result {
        Forwarded::Done(response) => PeerResponse::Forwarded(response),
        Forwarded::NotLeader { leader } => PeerResponse::NotLeader { leader },
        Forwarded::Unknown { reason } => PeerResponse::Refused { reason },
    }
}
