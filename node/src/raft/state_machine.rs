//! openraft's state machine over `store`: each command of each committed entry (a `Batch`) is
//! applied by the sans-IO `state::apply` and their writes are committed with the new applied
//! log id in one batch; then their events wake local waiters. Snapshots are full exports of
//! the state tables, streamed to and from files (`store::snapshot`), never whole in memory.

// openraft's traits fix the error type (`StorageError`, ~224 bytes); helpers return it too.
#![allow(clippy::result_large_err)]

use super::parking::Parking;
use super::{NodeId, TypeConfig};
use crate::sched::Waiters;
use crate::state;
use crate::store::Store;
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, StorageError, StorageIOError, StoredMembership,
};
use proto::command::{Batch, Response};
use proto::mesh::NodeInfo;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::fs::File;
use tokio::io::AsyncWriteExt;

pub(super) type Applied = (Option<LogId<NodeId>>, StoredMembership<NodeId, NodeInfo>);

/// The state machine of this node. Cloning shares the store and waiters.
#[derive(Clone)]
pub(super) struct StateMachine {
    store: Store,
    /// Local long-pollers, woken by the events of applied commands.
    waiters: Arc<Waiters>,
    /// Long-polls parked here while this node leads, woken by the same events.
    parking: Arc<Parking>,
    /// The file a snapshot is being received into, until it is installed.
    receiving: Arc<Mutex<Option<PathBuf>>>,
    /// The membership of the last applied record, so apply need not read and decode it from
    /// the store for every batch of entries (none: read it). Only apply and snapshot
    /// installation change the record, both on raft's state machine task.
    membership: Arc<Mutex<Option<StoredMembership<NodeId, NodeInfo>>>>,
}

impl StateMachine {
    pub(super) fn new(store: Store, waiters: Arc<Waiters>, parking: Arc<Parking>) -> StateMachine {
        StateMachine {
            store,
            waiters,
            parking,
            receiving: Arc::default(),
            membership: Arc::default(),
        }
    }

    fn membership(&self) -> std::sync::MutexGuard<'_, Option<StoredMembership<NodeId, NodeInfo>>> {
        // A plain value replaced whole: a panic elsewhere cannot leave it inconsistent.
        self.membership.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn receiving(&self) -> std::sync::MutexGuard<'_, Option<PathBuf>> {
        // The guarded value is a plain path: a panic elsewhere cannot leave it inconsistent.
        self.receiving.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn sm_error(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&std::io::Error::other(e.to_string())).into()
}

fn snapshot_error(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::read_snapshot(None, &std::io::Error::other(e.to_string())).into()
}

/// The applied record as the store keeps it; none yet means nothing applied.
pub(super) fn decode_applied(bytes: Option<Vec<u8>>) -> Result<Applied, serde_json::Error> {
    match bytes {
        None => Ok((None, StoredMembership::default())),
        Some(bytes) => serde_json::from_slice(&bytes),
    }
}

fn read_applied(store: &Store) -> Result<Applied, StorageError<NodeId>> {
    decode_applied(store.applied().map_err(sm_error)?).map_err(sm_error)
}

/// The responses to one entry's commands, in order (none for blank and membership entries).
type EntryResponses = Vec<Response>;

/// Entries applied on top of each other before their writes go to RocksDB in one batch.
const APPLY_BATCH_MAX: usize = 256;

/// Applies entries in order; returns each entry's responses (one per command) and the events.
/// Entries are applied on an overlay of the store (each command sees the writes of the ones
/// before it), and every `APPLY_BATCH_MAX` entries the overlay is committed in one batch with
/// the applied record of its last entry.
fn apply_blocking(
    store: &Store,
    mut membership: StoredMembership<NodeId, NodeInfo>,
    entries: Vec<Entry<TypeConfig>>,
    parking: &Parking,
) -> Result<Applying, StorageError<NodeId>> {
    let mut responses = Vec::with_capacity(entries.len());
    let mut events = Vec::new();
    let live = store.applying();
    for chunk in entries.chunks(APPLY_BATCH_MAX) {
        let mut overlay = state::tx::Tx::new(&live);
        let mut last = None;
        for entry in chunk {
            let response = match &entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Membership(config) => {
                    membership = StoredMembership::new(Some(entry.log_id), config.clone());
                    Vec::new()
                }
                EntryPayload::Normal(Batch(commands)) => {
                    let mut replies = Vec::with_capacity(commands.len());
                    for command in commands {
                        let applied = state::apply(&overlay, command).map_err(sm_error)?;
                        // A submit paired with a parked long-poll in its entry has had its
                        // process's wake-up already.
                        let paired = parking.was_paired(&command.request_id);
                        events.extend(applied.events.into_iter().map(|event| {
                            let wake_parked = !paired || !is_enqueued(&event);
                            (event, wake_parked)
                        }));
                        overlay.absorb(applied.writes);
                        replies.push(applied.response);
                    }
                    replies
                }
            };
            last = Some(entry.log_id);
            responses.push(response);
        }
        let record: Applied = (last, membership.clone());
        let bytes = serde_json::to_vec(&record).map_err(sm_error)?;
        store
            .commit_state(overlay.into_writes(), &bytes)
            .map_err(sm_error)?;
    }
    Ok(Applying {
        responses,
        events,
        membership,
    })
}

fn is_enqueued(event: &state::Event) -> bool {
    matches!(event, state::Event::Enqueued { .. })
}

/// What applying entries produced.
struct Applying {
    /// Each entry's responses (one per command).
    responses: Vec<EntryResponses>,
    /// With whether it wakes a parked long-poll.
    events: Vec<(state::Event, bool)>,
    /// The membership in the applied record now.
    membership: StoredMembership<NodeId, NodeInfo>,
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<Applied, StorageError<NodeId>> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || read_applied(&store))
            .await
            .map_err(sm_error)?
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<EntryResponses>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let membership = match self.membership().clone() {
            Some(membership) => membership,
            None => read_applied(&self.store)?.1,
        };
        // Apply is CPU work plus unsynced RocksDB writes, microseconds per entry: done inline,
        // it spares raft's apply path two thread hand-offs per batch.
        let applied = match apply_blocking(&self.store, membership, entries, &self.parking) {
            Ok(applied) => applied,
            Err(error) => {
                // What was committed is unknown now: read the record again next time.
                *self.membership() = None;
                return Err(error);
            }
        };
        *self.membership() = Some(applied.membership);
        // The writes are visible to readers now; wake one waiter per enqueued process.
        for (event, wake_parked) in applied.events {
            if wake_parked {
                match &event {
                    state::Event::Enqueued {
                        colonyname,
                        executortype,
                    } => self.parking.enqueued(colonyname, executortype),
                    state::Event::Resumed { colonyname } => self.parking.resumed(colonyname),
                    state::Event::ExecutorsReleased { executor_ids } => {
                        self.parking.released(executor_ids)
                    }
                    _ => {}
                }
            }
            self.waiters.publish(&event);
        }
        Ok(applied.responses)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<File>, StorageError<NodeId>> {
        let store = self.store.clone();
        let (path, file) = tokio::task::spawn_blocking(move || store.new_snapshot_file())
            .await
            .map_err(snapshot_error)?
            .map_err(snapshot_error)?;
        let previous = self.receiving().replace(path);
        // A transfer that never finished leaves its file behind: drop it now.
        if let Some(previous) = previous {
            let _ = std::fs::remove_file(previous);
        }
        Ok(Box::new(File::from_std(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, NodeInfo>,
        snapshot: Box<File>,
    ) -> Result<(), StorageError<NodeId>> {
        let record: Applied = (meta.last_log_id, meta.last_membership.clone());
        let applied = serde_json::to_vec(&record).map_err(snapshot_error)?;
        let meta_bytes = serde_json::to_vec(meta).map_err(snapshot_error)?;
        let mut file = *snapshot;
        file.flush().await.map_err(snapshot_error)?;
        let mut file = file.into_std().await;
        let received = self.receiving().take();
        *self.membership() = None;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            file.sync_all().map_err(snapshot_error)?;
            file.seek(SeekFrom::Start(0)).map_err(snapshot_error)?;
            store
                .import_state_from(&file, &applied)
                .map_err(snapshot_error)?;
            // Keep the received file; data handed over otherwise is exported again.
            let kept = match received {
                Some(path) => path,
                None => store.write_snapshot_file().map_err(snapshot_error)?.0,
            };
            store
                .keep_snapshot(&kept, &meta_bytes)
                .map_err(snapshot_error)
        })
        .await
        .map_err(snapshot_error)??;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.load_snapshot())
            .await
            .map_err(snapshot_error)?
            .map_err(snapshot_error)?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let meta = serde_json::from_slice(&stored.meta).map_err(snapshot_error)?;
        let file = File::open(&stored.file).await.map_err(snapshot_error)?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(file),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let store = self.store.clone();
        let (meta, kept) = tokio::task::spawn_blocking(move || {
            let (file, applied) = store.write_snapshot_file().map_err(snapshot_error)?;
            let (last_log_id, last_membership) = decode_applied(applied).map_err(snapshot_error)?;
            let snapshot_id = match last_log_id {
                Some(id) => format!(
                    "{}-{}-{}",
                    id.leader_id.term, id.leader_id.node_id, id.index
                ),
                None => "empty".to_string(),
            };
            let meta = SnapshotMeta {
                last_log_id,
                last_membership,
                snapshot_id,
            };
            let meta_bytes = serde_json::to_vec(&meta).map_err(snapshot_error)?;
            let kept = store
                .keep_snapshot(&file, &meta_bytes)
                .map_err(snapshot_error)?;
            Ok::<_, StorageError<NodeId>>((meta, kept))
        })
        .await
        .map_err(snapshot_error)??;
        let file = File::open(&kept).await.map_err(snapshot_error)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

/// The applied log index and a SHA3-256 digest of all state, read from one consistent point in
/// time. Deterministic apply makes equal indexes mean equal digests on every node.
pub(super) fn state_digest(store: &Store) -> Result<(u64, String), StorageError<NodeId>> {
    let mut digest = proto::crypto::Sha3Writer::default();
    let applied = store.export_state_to(&mut digest).map_err(snapshot_error)?;
    let (last_log_id, _) = decode_applied(applied).map_err(snapshot_error)?;
    let index = last_log_id.map_or(0, |id| id.index);
    Ok((index, digest.finish_hex()))
}
