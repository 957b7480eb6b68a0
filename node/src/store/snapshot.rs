//! State snapshots: every state table read from one RocksDB snapshot into a blob, and a blob
//! installed in place of the current state; plus the latest snapshot kept for followers.
//!
//! Blob format (all integers little-endian u32): repeated `table_index, key_len, key,
//! value_len, value`. Tables are in `Table::ALL` order.

use super::{io, Error, Store, CF_APPLIED, CF_SNAPSHOT};
use crate::state::keys::Table;
use rocksdb::{IteratorMode, WriteBatch};

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("keys and values are far below 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take<'a>(input: &mut &'a [u8], len: usize) -> Result<&'a [u8], Error> {
    if input.len() < len {
        return Err(Error::Corrupt("snapshot blob is truncated".into()));
    }
    let (head, rest) = input.split_at(len);
    *input = rest;
    Ok(head)
}

fn take_u32(input: &mut &[u8]) -> Result<u32, Error> {
    let bytes: [u8; 4] = take(input, 4)?.try_into().expect("took exactly 4 bytes");
    Ok(u32::from_le_bytes(bytes))
}

/// A stored snapshot: `(meta, blob)` as the raft module encoded them.
pub type StoredSnapshot = (Vec<u8>, Vec<u8>);

impl Store {
    /// Reads all state tables and the applied record from one consistent point in time.
    pub fn export_state(&self) -> Result<(Vec<u8>, Option<Vec<u8>>), Error> {
        let snapshot = self.db.snapshot();
        let mut out = Vec::new();
        for (index, table) in Table::ALL.iter().enumerate() {
            let cf = self.cf(table.name());
            for item in snapshot.iterator_cf(cf, IteratorMode::Start) {
                let (key, value) = item.map_err(io("export state"))?;
                out.extend_from_slice(&(index as u32).to_le_bytes());
                put_bytes(&mut out, &key);
                put_bytes(&mut out, &value);
            }
        }
        let applied = snapshot
            .get_cf(self.cf(CF_APPLIED), b"applied")
            .map_err(io("export applied"))?;
        Ok((out, applied))
    }

    /// Replaces all state with `blob` and records `applied`, in one fsynced batch.
    pub fn import_state(&self, blob: &[u8], applied: &[u8]) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        for table in Table::ALL {
            let cf = self.cf(table.name());
            for item in self.db.iterator_cf(cf, IteratorMode::Start) {
                let (key, _) = item.map_err(io("clear state"))?;
                batch.delete_cf(cf, key);
            }
        }
        let mut input = blob;
        while !input.is_empty() {
            let index = take_u32(&mut input)? as usize;
            let table = Table::ALL
                .get(index)
                .ok_or_else(|| Error::Corrupt(format!("snapshot names table {index}")))?;
            let key_len = take_u32(&mut input)? as usize;
            let key = take(&mut input, key_len)?;
            let value_len = take_u32(&mut input)? as usize;
            let value = take(&mut input, value_len)?;
            batch.put_cf(self.cf(table.name()), key, value);
        }
        batch.put_cf(self.cf(CF_APPLIED), b"applied", applied);
        self.write(batch, true)
    }

    /// Stores the latest snapshot (metadata and blob), fsynced.
    pub fn save_snapshot(&self, meta: &[u8], blob: &[u8]) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_SNAPSHOT), b"meta", meta);
        batch.put_cf(self.cf(CF_SNAPSHOT), b"data", blob);
        self.write(batch, true)
    }

    /// The latest stored snapshot, if any.
    pub fn load_snapshot(&self) -> Result<Option<StoredSnapshot>, Error> {
        let cf = self.cf(CF_SNAPSHOT);
        let meta = self.db.get_cf(cf, b"meta").map_err(io("read snapshot"))?;
        let data = self.db.get_cf(cf, b"data").map_err(io("read snapshot"))?;
        Ok(meta.zip(data))
    }
}
