//! Proposal batching on the leader: commands proposed concurrently share one raft entry, so a
//! burst of client writes costs one append, one replication round and one fsync instead of
//! one each. A lone command goes out at once; batches form only while earlier ones are in
//! flight, so batching adds no latency at low load.
//!
//! A `Submit` that an executor parked on this leader can run takes that executor's `Assign`
//! into the same entry, right behind it (`parking::Parking::pair_submit`): one commit
//! dispatches the process.

use super::parking::{Parked, Parking};
use super::{Error, TypeConfig};
use crate::metrics::Metrics;
use openraft::error::{ClientWriteError, RaftError};
use openraft::Raft as OpenRaft;
use proto::command::{Batch, Command, Response};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most commands in one entry.
const BATCH_COMMANDS_MAX: usize = 256;
/// A batch takes no more commands once their JSON reaches this size (a single larger command
/// still goes alone). Keeps an append-entries request of many entries far below the mesh
/// message limit in practice.
const BATCH_BYTES_MAX: usize = 512 << 10;
/// Batches handed to raft and not yet committed. While all are in flight, new commands wait in
/// the queue and leave together as the next batch.
const BATCHES_IN_FLIGHT_MAX: usize = 2;
/// Commands waiting for a batch; a full queue makes proposers wait (bounded by their timeout).
const QUEUE_MAX: usize = 4096;

/// One command waiting to be proposed, with where its outcome goes.
struct Pending {
    command: Command,
    bytes: usize,
    outcome: Outcome,
}

/// Who hears a command's outcome.
enum Outcome {
    /// A proposer waiting for it.
    Caller(oneshot::Sender<Result<Response, Error>>),
    /// An attempt of a parked long-poll; the registry settles it. `paired` is the position
    /// in the batch of the submit it was paired with.
    Parked {
        parked: Box<Parked>,
        paired: Option<usize>,
    },
}

impl Outcome {
    /// Nobody waits for the outcome any more.
    fn abandoned(&self) -> bool {
        match self {
            Outcome::Caller(sender) => sender.is_closed(),
            Outcome::Parked { parked, .. } => parked.abandoned(),
        }
    }
}

/// The proposing side of the batcher; cheap to clone.
#[derive(Clone)]
pub(super) struct Batcher {
    queue: mpsc::Sender<Pending>,
}

/// A batcher handle that does not keep the batching task alive (the parking registry holds
/// one: the task holds the registry, and a strong handle there would keep both forever).
#[derive(Clone)]
pub(super) struct WeakBatcher {
    queue: mpsc::WeakSender<Pending>,
}

impl WeakBatcher {
    /// The batcher, unless it has stopped.
    pub(super) fn upgrade(&self) -> Option<Batcher> {
        self.queue.upgrade().map(|queue| Batcher { queue })
    }
}

impl Batcher {
    /// Starts the batching task for `raft`; it ends when the last `Batcher` clone is dropped.
    pub(super) fn start(
        raft: OpenRaft<TypeConfig>,
        parking: Arc<Parking>,
        metrics: Arc<Metrics>,
    ) -> Batcher {
        let (queue, waiting) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(run(raft, waiting, parking, metrics));
        Batcher { queue }
    }

    pub(super) fn downgrade(&self) -> WeakBatcher {
        WeakBatcher {
            queue: self.queue.downgrade(),
        }
    }

    /// Proposes an attempt of a parked long-poll in the next batch; the parking registry
    /// settles its outcome.
    pub(super) async fn propose_parked(&self, command: Command, parked: Parked) {
        let pending = Pending {
            bytes: encoded_len(&command),
            command,
            outcome: Outcome::Parked {
                parked: Box::new(parked),
                paired: None,
            },
        };
        if let Err(mpsc::error::SendError(pending)) = self.queue.send(pending).await {
            if let Outcome::Parked { parked, .. } = pending.outcome {
                let reason = "the proposal batcher has stopped".to_string();
                parked.answer(proto::mesh::AssignWaited::Unknown { reason });
            }
        }
    }

    /// Proposes `command` in the next batch and waits for its own response. Not bounded in
    /// time: callers bound it. Dropping the future does not withdraw the command.
    pub(super) async fn propose(&self, command: Command) -> Result<Response, Error> {
        let (outcome, answer) = oneshot::channel();
        let pending = Pending {
            bytes: encoded_len(&command),
            command,
            outcome: Outcome::Caller(outcome),
        };
        let stopped = || Error::Fatal("the proposal batcher has stopped".into());
        self.queue.send(pending).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Takes the first waiting command, waits for a free in-flight slot, then adds whatever else
/// is waiting (up to the limits) and hands the batch to raft on its own task.
async fn run(
    raft: OpenRaft<TypeConfig>,
    mut waiting: mpsc::Receiver<Pending>,
    parking: Arc<Parking>,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT_MAX));
    while let Some(first) = waiting.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // A proposer that gave up while waiting (e.g. no quorum) was told the outcome is
        // unknown: its command is dropped rather than proposed late.
        if first.outcome.abandoned() {
            continue;
        }
        let mut bytes = 0;
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(pending) = next.take() {
            bytes += pending.bytes;
            let paired = parking.pair_submit(&pending.command);
            batch.push(pending);
            if let Some((command, parked)) = paired {
                batch.push(Pending {
                    bytes: encoded_len(&command),
                    command,
                    outcome: Outcome::Parked {
                        parked: Box::new(parked),
                        paired: Some(batch.len() - 1),
                    },
                });
            }
            if batch.len() >= BATCH_COMMANDS_MAX - 1 || bytes >= BATCH_BYTES_MAX {
                break;
            }
            while let Ok(candidate) = waiting.try_recv() {
                if !candidate.outcome.abandoned() {
                    next = Some(candidate);
                    break;
                }
            }
        }
        metrics.proposed(batch.len());
        let (raft, parking) = (raft.clone(), parking.clone());
        tokio::spawn(async move {
            write(&raft, &parking, batch).await;
            drop(slot);
        });
    }
}

/// Proposes one batch and tells each command its outcome.
async fn write(raft: &OpenRaft<TypeConfig>, parking: &Parking, batch: Vec<Pending>) {
    let (commands, outcomes): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|p| (p.command, p.outcome)).unzip();
    let count = commands.len();
    let results: Vec<Result<Response, Error>> = match raft.client_write(Batch(commands)).await {
        Ok(written) if written.data.len() == count => written.data.into_iter().map(Ok).collect(),
        Ok(written) => {
            let reason = format!(
                "apply answered {} responses for a batch of {count}",
                written.data.len()
            );
            (0..count)
                .map(|_| Err(Error::Fatal(reason.clone())))
                .collect()
        }
        Err(error) => (0..count).map(|_| Err(write_error(&error))).collect(),
    };
    let copy = |result: &Result<Response, Error>| match result {
        Ok(response) => Ok(response.clone()),
        Err(error) => Err(error.duplicate()),
    };
    for (outcome, result) in outcomes.into_iter().zip(&results) {
        match outcome {
            Outcome::Caller(sender) => {
                let _ = sender.send(copy(result));
            }
            Outcome::Parked { parked, paired } => {
                let submitted = paired.and_then(|i| results.get(i)?.as_ref().ok());
                parking.settle(*parked, copy(result), submitted);
            }
        }
    }
}

fn write_error(error: &RaftError<u64, ClientWriteError<u64, proto::mesh::NodeInfo>>) -> Error {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => Error::NotLeader {
            leader: forward.leader_id,
        },
        RaftError::APIError(other) => Error::Fatal(other.to_string()),
        RaftError::Fatal(fatal) => Error::Fatal(fatal.to_string()),
    }
}

/// The size of `command` as JSON, without building the JSON.
pub(super) fn encoded_len(command: &Command) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Serializing our own types to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut counter, command);
    counter.0
}
