//! The raft log in column family `raft_log`: big-endian u64 index keys, so key order is log
//! order. Appends are written unsynced (readable at once) and made durable by `log_sync`, which
//! fsyncs the write-ahead log: one fsync can cover many appends (group commit).

use super::{io, Error, Store, CF_RAFT_LOG};
use rocksdb::{IteratorMode, WriteBatch};

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn index_of(key: &[u8]) -> Result<u64, Error> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| Error::Corrupt(format!("log key {key:?} is not 8 bytes")))?;
    Ok(u64::from_be_bytes(bytes))
}

impl Store {
    /// Appends encoded entries `(index, bytes)` in one batch, readable at once and durable
    /// only after the next `log_sync` (or any synced write) returns.
    pub fn log_append(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), Error> {
        let cf = self.cf(CF_RAFT_LOG);
        let mut batch = WriteBatch::default();
        for (index, bytes) in entries {
            batch.put_cf(cf, key(index), bytes);
        }
        self.write(batch, false)
    }

    /// Fsyncs the write-ahead log: every write made before the call is durable when it returns.
    pub fn log_sync(&self) -> Result<(), Error> {
        self.db
            .flush_wal(true)
            .map_err(io("sync the write-ahead log"))
    }

    /// Entries with `start <= index < end`, in order.
    pub fn log_range(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        let cf = self.cf(CF_RAFT_LOG);
        let from = key(start);
        let mode = IteratorMode::From(&from, rocksdb::Direction::Forward);
        let mut entries = Vec::new();
        for item in self.db.iterator_cf(cf, mode) {
            let (k, v) = item.map_err(io("read log"))?;
            let index = index_of(&k)?;
            if index >= end {
                break;
            }
            entries.push((index, v.into_vec()));
        }
        Ok(entries)
    }

    /// The last entry of the log, if any.
    pub fn log_last(&self) -> Result<Option<(u64, Vec<u8>)>, Error> {
        let cf = self.cf(CF_RAFT_LOG);
        match self.db.iterator_cf(cf, IteratorMode::End).next() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item.map_err(io("read log"))?;
                Ok(Some((index_of(&k)?, v.into_vec())))
            }
        }
    }

    /// Deletes entries with `index >= start` (conflicting suffix), fsynced.
    pub fn log_truncate_from(&self, start: u64) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(CF_RAFT_LOG), key(start), key(u64::MAX));
        batch.delete_cf(self.cf(CF_RAFT_LOG), key(u64::MAX));
        self.write(batch, true)
    }

    /// Deletes entries with `index <= upto` (compacted into a snapshot), recording
    /// `purged_meta` (the last purged log id) in the same batch.
    pub fn log_purge_upto(&self, upto: u64, purged_meta: &[u8]) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(CF_RAFT_LOG), key(0), key(upto.saturating_add(1)));
        batch.put_cf(self.cf(super::CF_RAFT_META), "last_purged", purged_meta);
        self.write(batch, true)
    }
}
