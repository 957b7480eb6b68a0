//! openraft's state machine over `store`: each committed entry is applied by the sans-IO
//! `state::apply` and its writes are committed with the new applied log id in one batch; then
//! its events wake local waiters. Snapshots are full exports of the state tables.

// openraft's traits fix the error type (`StorageError`, ~224 bytes); helpers return it too.
#![allow(clippy::result_large_err)]

use super::{NodeId, TypeConfig};
use crate::sched::Waiters;
use crate::state;
use crate::store::Store;
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, StorageError, StorageIOError, StoredMembership,
};
use proto::command::{Reply, Response};
use proto::mesh::NodeInfo;
use std::io::Cursor;
use std::sync::Arc;

type Applied = (Option<LogId<NodeId>>, StoredMembership<NodeId, NodeInfo>);

/// The state machine of this node. Cloning shares the store and waiters.
#[derive(Clone)]
pub(super) struct StateMachine {
    store: Store,
    /// Local long-pollers, woken by the events of applied commands.
    waiters: Arc<Waiters>,
}

impl StateMachine {
    pub(super) fn new(store: Store, waiters: Arc<Waiters>) -> StateMachine {
        StateMachine { store, waiters }
    }
}

fn sm_error(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&std::io::Error::other(e.to_string())).into()
}

fn snapshot_error(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::read_snapshot(None, &std::io::Error::other(e.to_string())).into()
}

fn read_applied(store: &Store) -> Result<Applied, StorageError<NodeId>> {
    match store.applied().map_err(sm_error)? {
        None => Ok((None, StoredMembership::default())),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(sm_error),
    }
}

/// Entries applied on top of each other before their writes go to RocksDB in one batch.
const APPLY_BATCH_MAX: usize = 256;

/// Applies entries in order; returns responses and events. Entries are applied on an overlay
/// of the store (each sees the writes of the ones before it), and every `APPLY_BATCH_MAX`
/// entries the overlay is committed in one batch with the applied record of its last entry.
fn apply_blocking(
    store: &Store,
    entries: Vec<Entry<TypeConfig>>,
) -> Result<(Vec<Response>, Vec<state::Event>), StorageError<NodeId>> {
    let (_, mut membership) = read_applied(store)?;
    let mut responses = Vec::with_capacity(entries.len());
    let mut events = Vec::new();
    for chunk in entries.chunks(APPLY_BATCH_MAX) {
        let mut overlay = state::tx::Tx::new(store);
        let mut last = None;
        for entry in chunk {
            let response = match &entry.payload {
                EntryPayload::Blank => Response(Ok(Reply::Done)),
                EntryPayload::Membership(config) => {
                    membership = StoredMembership::new(Some(entry.log_id), config.clone());
                    Response(Ok(Reply::Done))
                }
                EntryPayload::Normal(command) => {
                    let applied = state::apply(&overlay, command).map_err(sm_error)?;
                    events.extend(applied.events);
                    overlay.absorb(applied.writes);
                    applied.response
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
    Ok((responses, events))
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<Applied, StorageError<NodeId>> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || read_applied(&store))
            .await
            .map_err(sm_error)?
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let store = self.store.clone();
        // Apply is CPU work plus unsynced RocksDB writes, microseconds per entry: done inline,
        // it spares raft's apply path two thread hand-offs per batch.
        let (responses, events) = apply_blocking(&store, entries)?;
        // The writes are visible to readers now; wake one waiter per enqueued process.
        for event in events {
            self.waiters.publish(&event);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, NodeInfo>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let blob = snapshot.into_inner();
        let record: Applied = (meta.last_log_id, meta.last_membership.clone());
        let applied = serde_json::to_vec(&record).map_err(snapshot_error)?;
        let meta_bytes = serde_json::to_vec(meta).map_err(snapshot_error)?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            store
                .import_state(&blob, &applied)
                .map_err(snapshot_error)?;
            store
                .save_snapshot(&meta_bytes, &blob)
                .map_err(snapshot_error)
        })
        .await
        .map_err(snapshot_error)?
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.load_snapshot())
            .await
            .map_err(snapshot_error)?
            .map_err(snapshot_error)?;
        let Some((meta, blob)) = stored else {
            return Ok(None);
        };
        let meta = serde_json::from_slice(&meta).map_err(snapshot_error)?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(blob)),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let (blob, applied) = store.export_state().map_err(snapshot_error)?;
            let (last_log_id, last_membership): Applied = match applied {
                Some(bytes) => serde_json::from_slice(&bytes).map_err(snapshot_error)?,
                None => (None, StoredMembership::default()),
            };
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
            store
                .save_snapshot(&meta_bytes, &blob)
                .map_err(snapshot_error)?;
            Ok(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(blob)),
            })
        })
        .await
        .map_err(snapshot_error)?
    }
}

/// The applied log index and a SHA3-256 digest of all state, read from one consistent point in
/// time. Deterministic apply makes equal indexes mean equal digests on every node.
pub(super) fn state_digest(store: &Store) -> Result<(u64, String), StorageError<NodeId>> {
    let (blob, applied) = store.export_state().map_err(snapshot_error)?;
    let (last_log_id, _): Applied = match applied {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(snapshot_error)?,
        None => (None, StoredMembership::default()),
    };
    let index = last_log_id.map_or(0, |id| id.index);
    Ok((index, proto::crypto::sha3_hex(&blob)))
}
