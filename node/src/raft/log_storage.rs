//! openraft's log storage over `store`: entries as JSON under big-endian index keys, the vote
//! and the committed log id in raft metadata.
//!
//! Group commit: `append` writes its entries unsynced (readable at once, as openraft requires)
//! and hands the flush callback to the `raft-log-sync` thread, which fsyncs the write-ahead log
//! once for every callback queued meanwhile and only then fires them, in order. So raft counts
//! an entry as persisted only once it is on disk, while concurrent client writes share fsyncs
//! instead of queueing behind one fsync each. Votes, truncations and purges are fsynced before
//! they return.
//!
//! RocksDB calls block, so they run on tokio's blocking pool; each call awaits its write, which
//! keeps appends, truncations and purges in order.

// openraft's traits fix the error type (`StorageError`, ~224 bytes); helpers return it too.
#![allow(clippy::result_large_err)]

use super::{NodeId, TypeConfig};
use crate::store::Store;
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogId, StorageError, StorageIOError, Vote};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

/// Flush callbacks waiting for the sync thread; when full, `append` waits (back-pressure).
const FLUSHES_QUEUED_MAX: usize = 4096;

/// The raft log of this node. Cloning shares the underlying store and sync thread.
#[derive(Clone)]
pub(super) struct LogStore {
    store: Store,
    sync: std::sync::Arc<SyncThread>,
}

/// The `raft-log-sync` thread and the queue to it. Dropping the last `LogStore` closes the
/// queue and then waits for the thread: it exits with its clone of the store, so the database
/// is closed before the drop returns (not while the process is already exiting, which crashes
/// RocksDB's background threads).
struct SyncThread {
    // Fields drop in this order: the queue closes first, then `_joined` waits for the thread.
    flushes: tokio::sync::mpsc::Sender<LogFlushed<TypeConfig>>,
    _joined: JoinOnDrop,
}

struct JoinOnDrop(Option<std::thread::JoinHandle<()>>);

impl Drop for JoinOnDrop {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            // The thread only finishes its current fsync and fires its callbacks.
            if thread.join().is_err() {
                tracing::error!("the raft log sync thread panicked");
            }
        }
    }
}

impl LogStore {
    pub(super) fn new(store: Store) -> LogStore {
        let (flushes, queued) = tokio::sync::mpsc::channel(FLUSHES_QUEUED_MAX);
        let syncer = store.clone();
        let thread = std::thread::Builder::new()
            .name("raft-log-sync".into())
            .spawn(move || sync_loop(&syncer, queued))
            .expect("spawn the raft log sync thread");
        let sync = SyncThread {
            flushes,
            _joined: JoinOnDrop(Some(thread)),
        };
        LogStore {
            store,
            sync: std::sync::Arc::new(sync),
        }
    }
}

/// Fsyncs once per wake-up for every flush callback queued so far, then fires them in order.
fn sync_loop(store: &Store, mut queued: tokio::sync::mpsc::Receiver<LogFlushed<TypeConfig>>) {
    while let Some(first) = queued.blocking_recv() {
        let mut callbacks = vec![first];
        while let Ok(next) = queued.try_recv() {
            callbacks.push(next);
        }
        let started = crate::clock::monotonic();
        let synced = store.log_sync();
        tracing::trace!(
            callbacks = callbacks.len(),
            micros = started.elapsed().as_micros() as u64,
            "raft log synced"
        );
        for callback in callbacks {
            let result = match &synced {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            callback.log_io_completed(result);
        }
    }
}

fn read_error(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::read_logs(&std::io::Error::other(e.to_string())).into()
}

fn write_error(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::write_logs(&std::io::Error::other(e.to_string())).into()
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError<NodeId>> {
    serde_json::from_slice(bytes).map_err(read_error)
}

/// Runs a blocking store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError<NodeId>> + Send + 'static,
) -> Result<T, StorageError<NodeId>> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| write_error(format!("store task: {e}")))?
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => i.saturating_add(1),
            Bound::Excluded(i) => *i,
            Bound::Unbounded => u64::MAX,
        };
        let store = self.store.clone();
        let raw = blocking(move || store.log_range(start, end).map_err(read_error)).await?;
        raw.iter().map(|(_, bytes)| decode(bytes)).collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let store = self.store.clone();
        let (last, purged) = blocking(move || {
            let last = store.log_last().map_err(read_error)?;
            let purged = store.raft_meta("last_purged").map_err(read_error)?;
            Ok((last, purged))
        })
        .await?;
        let last_purged_log_id: Option<LogId<NodeId>> = match purged {
            Some(bytes) => decode(&bytes)?,
            None => None,
        };
        let last_log_id = match last {
            Some((_, bytes)) => Some(*decode::<Entry<TypeConfig>>(&bytes)?.get_log_id()),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let bytes = serde_json::to_vec(vote).map_err(write_error)?;
        let store = self.store.clone();
        blocking(move || {
            store
                .set_raft_meta("vote", &bytes, true)
                .map_err(write_error)
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        let store = self.store.clone();
        let bytes = blocking(move || store.raft_meta("vote").map_err(read_error)).await?;
        bytes.map(|b| decode(&b)).transpose()
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Not fsynced: it only lets a restart re-apply sooner; raft re-derives it if lost.
        let bytes = serde_json::to_vec(&committed).map_err(write_error)?;
        let store = self.store.clone();
        blocking(move || {
            store
                .set_raft_meta("committed", &bytes, false)
                .map_err(write_error)
        })
        .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let store = self.store.clone();
        let bytes = blocking(move || store.raft_meta("committed").map_err(read_error)).await?;
        Ok(bytes
            .map(|b| decode::<Option<LogId<NodeId>>>(&b))
            .transpose()?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded = entries
            .into_iter()
            .map(|entry| {
                Ok((
                    entry.log_id.index,
                    serde_json::to_vec(&entry).map_err(write_error)?,
                ))
            })
            .collect::<Result<Vec<_>, StorageError<NodeId>>>()?;
        tracing::trace!(entries = encoded.len(), "raft log append");
        let store = self.store.clone();
        // An unsynced write of a small batch takes microseconds: doing it inline saves two
        // thread hand-offs per append on raft's critical path (the fsync is elsewhere).
        let written = store.log_append(encoded).map_err(write_error);
        if let Err(e) = &written {
            callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
            return written;
        }
        // Raft may count these entries as persisted only once the sync thread has fsynced them.
        self.sync
            .flushes
            .send(callback)
            .await
            .map_err(|_| write_error("the raft log sync thread has stopped"))
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let store = self.store.clone();
        blocking(move || store.log_truncate_from(log_id.index).map_err(write_error)).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let bytes = serde_json::to_vec(&Some(log_id)).map_err(write_error)?;
        let store = self.store.clone();
        blocking(move || {
            store
                .log_purge_upto(log_id.index, &bytes)
                .map_err(write_error)
        })
        .await
    }
}
