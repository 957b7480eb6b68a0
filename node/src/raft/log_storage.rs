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
//! The recent tail of the log is also kept decoded in memory (`Tail`, bounded by
//! `TAIL_BYTES_MAX`): raft reads each entry back once to apply it and once per follower to
//! replicate it, and those reads come from memory instead of RocksDB plus a JSON decode.
//!
//! Reads of older entries, votes, truncations and purges run on tokio's blocking pool; each
//! call awaits its write, which keeps appends, truncations and purges in order.

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
/// The committed log id is written at most this often: it only lets a restart re-apply
/// sooner (raft re-derives it), so writing it on every commit would be a RocksDB write per
/// commit for nothing.
const COMMITTED_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// Encoded size of the entries kept decoded in memory. The newest entries are the ones read
/// (apply and replication follow close behind appends); a follower further behind reads from
/// RocksDB.
const TAIL_BYTES_MAX: usize = 16 << 20;

/// The raft log of this node. Cloning shares the underlying store, tail and sync thread.
#[derive(Clone)]
pub(super) struct LogStore {
    store: Store,
    sync: std::sync::Arc<SyncThread>,
    /// The newest entries, decoded; shared with the log readers of replication and apply.
    tail: std::sync::Arc<std::sync::Mutex<Tail>>,
    /// When the committed log id was last written (raft's core calls `save_committed` on
    /// its own instance, never a reader's clone).
    committed_saved: Option<std::time::Instant>,
}

/// Contiguous newest entries of the log, as appended (their encoded size beside them).
#[derive(Default)]
struct Tail {
    entries: std::collections::VecDeque<(Entry<TypeConfig>, usize)>,
    bytes: usize,
}

impl Tail {
    fn first(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.log_id.index)
    }

    fn last(&self) -> Option<u64> {
        self.entries.back().map(|(e, _)| e.log_id.index)
    }

    fn push(&mut self, entry: Entry<TypeConfig>, bytes: usize) {
        if self
            .last()
            .is_some_and(|last| last.checked_add(1) != Some(entry.log_id.index))
        {
            // Not contiguous (cannot happen after a truncation): start afresh.
            self.entries.clear();
            self.bytes = 0;
        }
        self.entries.push_back((entry, bytes));
        self.bytes += bytes;
        while self.bytes > TAIL_BYTES_MAX && self.entries.len() > 1 {
            if let Some((_, size)) = self.entries.pop_front() {
                self.bytes -= size;
            }
        }
    }

    /// Entries `start..end` if all of them are here.
    fn range(&self, start: u64, end: u64) -> Option<Vec<Entry<TypeConfig>>> {
        let (first, last) = (self.first()?, self.last()?);
        if start < first || start > end {
            return None;
        }
        let end = end.min(last.saturating_add(1));
        let skip = usize::try_from(start - first).ok()?;
        let take = usize::try_from(end.saturating_sub(start)).ok()?;
        Some(
            self.entries
                .iter()
                .skip(skip)
                .take(take)
                .map(|(e, _)| e.clone())
                .collect(),
        )
    }

    /// Drops entries with `index >= start`.
    fn truncate(&mut self, start: u64) {
        while self.last().is_some_and(|last| last >= start) {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Drops entries with `index <= upto`.
    fn purge(&mut self, upto: u64) {
        while self.first().is_some_and(|first| first <= upto) {
            if let Some((_, size)) = self.entries.pop_front() {
                self.bytes -= size;
            }
        }
    }
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
            tail: std::sync::Arc::default(),
            committed_saved: None,
        }
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        // Every mutation of the tail completes under the lock; a panic cannot leave it torn.
        self.tail.lock().unwrap_or_else(|e| e.into_inner())
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
        if let Some(entries) = self.tail().range(start, end) {
            return Ok(entries);
        }
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
        // Not fsynced, and at most every `COMMITTED_SAVE_INTERVAL`: it only lets a restart
        // re-apply sooner; raft re-derives it if lost. An unsynced write takes microseconds:
        // inline, it spares raft's core a thread hand-off.
        let now = crate::clock::monotonic();
        if self
            .committed_saved
            .is_some_and(|at| now.saturating_duration_since(at) < COMMITTED_SAVE_INTERVAL)
        {
            return Ok(());
        }
        self.committed_saved = Some(now);
        let bytes = serde_json::to_vec(&committed).map_err(write_error)?;
        self.store
            .set_raft_meta("committed", &bytes, false)
            .map_err(write_error)
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
        let mut encoded = Vec::new();
        let mut decoded = Vec::new();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(write_error)?;
            decoded.push((entry, bytes.len()));
            encoded.push((decoded[decoded.len() - 1].0.log_id.index, bytes));
        }
        tracing::trace!(entries = encoded.len(), "raft log append");
        // An unsynced write of a small batch takes microseconds: doing it inline saves two
        // thread hand-offs per append on raft's critical path (the fsync is elsewhere).
        let written = self.store.log_append(encoded).map_err(write_error);
        if let Err(e) = &written {
            callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
            return written;
        }
        {
            let mut tail = self.tail();
            for (entry, bytes) in decoded {
                tail.push(entry, bytes);
            }
        }
        // Raft may count these entries as persisted only once the sync thread has fsynced them.
        self.sync
            .flushes
            .send(callback)
            .await
            .map_err(|_| write_error("the raft log sync thread has stopped"))
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // The tail first: no reader may get an entry from memory that the store has dropped.
        self.tail().truncate(log_id.index);
        let store = self.store.clone();
        blocking(move || store.log_truncate_from(log_id.index).map_err(write_error)).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let bytes = serde_json::to_vec(&Some(log_id)).map_err(write_error)?;
        self.tail().purge(log_id.index);
        let store = self.store.clone();
        blocking(move || {
            store
                .log_purge_upto(log_id.index, &bytes)
                .map_err(write_error)
        })
        .await
    }
}
