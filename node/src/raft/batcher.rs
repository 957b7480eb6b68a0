//! Proposal batching on the leader: commands proposed concurrently share one raft entry, so a
//! burst of client writes costs one append, one replication round and one fsync instead of
//! one each. A lone command goes out at once; batches form only while earlier ones are in
//! flight, so batching adds no latency at low load.

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
    outcome: oneshot::Sender<Result<Response, Error>>,
}

/// The proposing side of the batcher; cheap to clone.
#[derive(Clone)]
pub(super) struct Batcher {
    queue: mpsc::Sender<Pending>,
}

impl Batcher {
    /// Starts the batching task for `raft`; it ends when the last `Batcher` clone is dropped.
    pub(super) fn start(raft: OpenRaft<TypeConfig>, metrics: Arc<Metrics>) -> Batcher {
        let (queue, waiting) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(run(raft, waiting, metrics));
        Batcher { queue }
    }

    /// Proposes `command` in the next batch and waits for its own response. Not bounded in
    /// time: callers bound it. Dropping the future does not withdraw the command.
    pub(super) async fn propose(&self, command: Command) -> Result<Response, Error> {
        let (outcome, answer) = oneshot::channel();
        let pending = Pending {
            bytes: encoded_len(&command),
            command,
            outcome,
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
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT_MAX));
    while let Some(first) = waiting.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // A proposer that gave up while waiting (e.g. no quorum) was told the outcome is
        // unknown: its command is dropped rather than proposed late.
        if first.outcome.is_closed() {
            continue;
        }
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < BATCH_COMMANDS_MAX && bytes < BATCH_BYTES_MAX {
            let Ok(next) = waiting.try_recv() else {
                break;
            };
            if next.outcome.is_closed() {
                continue;
            }
            bytes += next.bytes;
            batch.push(next);
        }
        metrics.proposed(batch.len());
        let raft = raft.clone();
        tokio::spawn(async move {
            write(&raft, batch).await;
            drop(slot);
        });
    }
}

/// Proposes one batch and tells each command its outcome.
async fn write(raft: &OpenRaft<TypeConfig>, batch: Vec<Pending>) {
    let (commands, outcomes): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|p| (p.command, p.outcome)).unzip();
    let count = commands.len();
    match raft.client_write(Batch(commands)).await {
        Ok(written) if written.data.len() == count => {
            for (outcome, response) in outcomes.into_iter().zip(written.data) {
                let _ = outcome.send(Ok(response));
            }
        }
        Ok(written) => {
            let reason = format!(
                "apply answered {} responses for a batch of {count}",
                written.data.len()
            );
            for outcome in outcomes {
                let _ = outcome.send(Err(Error::Fatal(reason.clone())));
            }
        }
        Err(error) => {
            for outcome in outcomes {
                let _ = outcome.send(Err(write_error(&error)));
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
fn encoded_len(command: &Command) -> usize {
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
