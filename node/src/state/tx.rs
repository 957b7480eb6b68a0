//! Reading and writing state through a transaction overlay, independent of the store.
//!
//! `StateRead` is what a store offers (point reads and bounded ordered scans). `Tx` layers one
//! command's pending writes over a `StateRead`, so apply logic reads its own writes, and the
//! runtime commits `Tx::into_writes` atomically (RocksDB write batch, or a map in tests).

use super::keys::Table;
use std::collections::BTreeMap;

/// A storage failure. Fatal for the node: apply cannot continue on a broken store.
#[derive(Debug, thiserror::Error)]
#[error("state store failure: {0}")]
pub struct StoreError(pub String);

/// Scan direction over keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

/// One key/value pair of a scan.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Read access to committed state.
pub trait StateRead {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Up to `limit` entries whose keys start with `prefix` and are strictly after `after`
    /// (before it, in reverse), in key order (reverse order for `Direction::Reverse`).
    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError>;
}

/// A pending write: `Some` puts the value, `None` deletes the key.
pub type Writes = BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>;

/// A command's view of state: committed state plus its own pending writes.
pub struct Tx<'a, R: StateRead + ?Sized> {
    /// Committed state; never written through this reference.
    base: &'a R,
    /// Writes made so far by this command, applied on commit in one batch.
    writes: Writes,
}

impl<'a, R: StateRead + ?Sized> Tx<'a, R> {
    pub fn new(base: &'a R) -> Self {
        Tx {
            base,
            writes: Writes::new(),
        }
    }

    pub fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert((table, key), Some(value));
    }

    pub fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.writes.insert((table, key), None);
    }

    /// Adds another command's writes on top of these (later writes win).
    pub fn absorb(&mut self, writes: Writes) {
        self.writes.extend(writes);
    }

    /// How many keys the pending writes touch.
    pub fn pending_len(&self) -> usize {
        self.writes.len()
    }

    /// The pending writes, to be committed atomically.
    pub fn into_writes(self) -> Writes {
        self.writes
    }

    fn pending_in<'s>(
        &'s self,
        table: Table,
        prefix: &'s [u8],
    ) -> impl Iterator<Item = (&'s Vec<u8>, &'s Option<Vec<u8>>)> + 's {
        self.writes
            .range((table, prefix.to_vec())..)
            .take_while(move |((t, k), _)| *t == table && k.starts_with(prefix))
            .map(|((_, k), v)| (k, v))
    }
}

impl<R: StateRead + ?Sized> StateRead for Tx<'_, R> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(&(table, key.to_vec())) {
            Some(pending) => Ok(pending.clone()),
            None => self.base.get(table, key),
        }
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let in_range = |key: &[u8]| match (after, direction) {
            (None, _) => true,
            (Some(after), Direction::Forward) => key > after,
            (Some(after), Direction::Reverse) => key < after,
        };
        let pending: Vec<_> = self
            .pending_in(table, prefix)
            .filter(|(k, _)| in_range(k))
            .collect();
        // Pending deletes can hide up to that many base entries, so read that many extra.
        let deletes = pending.iter().filter(|(_, v)| v.is_none()).count();
        let base = self.base.scan(
            table,
            prefix,
            after,
            direction,
            limit.saturating_add(deletes),
        )?;
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = base.into_iter().collect();
        for (key, value) in pending {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        let entries: Vec<Entry> = match direction {
            Direction::Forward => merged.into_iter().take(limit).collect(),
            Direction::Reverse => merged.into_iter().rev().take(limit).collect(),
        };
        Ok(entries)
    }
}

/// State held in ordered maps: the store used by unit tests of apply (no IO).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemState {
    /// Every table's entries, keyed by (table, key).
    pub entries: BTreeMap<(Table, Vec<u8>), Vec<u8>>,
}

impl MemState {
    /// Applies a command's writes.
    pub fn commit(&mut self, writes: Writes) {
        for ((table, key), value) in writes {
            match value {
                Some(value) => self.entries.insert((table, key), value),
                None => self.entries.remove(&(table, key)),
            };
        }
    }
}

impl StateRead for MemState {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.entries.get(&(table, key.to_vec())).cloned())
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let matching = self
            .entries
            .range((table, prefix.to_vec())..)
            .take_while(|((t, k), _)| *t == table && k.starts_with(prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()));
        let entries = match (direction, after) {
            (Direction::Forward, None) => matching.take(limit).collect(),
            (Direction::Forward, Some(after)) => matching
                .filter(|(k, _)| k.as_slice() > after)
                .take(limit)
                .collect(),
            (Direction::Reverse, after) => {
                let all: Vec<Entry> = matching
                    .filter(|(k, _)| after.is_none_or(|after| k.as_slice() < after))
                    .collect();
                all.into_iter().rev().take(limit).collect()
            }
        };
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_scan_merges_pending_puts_and_deletes() {
        let mut base = MemState::default();
        let mut setup = Tx::new(&base);
        for key in [b"p\0a", b"p\0b", b"p\0c", b"q\0a"] {
            setup.put(Table::Queue, key.to_vec(), b"v".to_vec());
        }
        let writes = setup.into_writes();
        base.commit(writes);

        let mut tx = Tx::new(&base);
        tx.delete(Table::Queue, b"p\0a".to_vec());
        tx.put(Table::Queue, b"p\0bb".to_vec(), b"new".to_vec());
        let keys =
            |entries: Vec<Entry>| -> Vec<Vec<u8>> { entries.into_iter().map(|e| e.0).collect() };
        let forward = tx
            .scan(Table::Queue, b"p\0", None, Direction::Forward, 2)
            .unwrap();
        assert_eq!(keys(forward), vec![b"p\0b".to_vec(), b"p\0bb".to_vec()]);
        let reverse = tx
            .scan(Table::Queue, b"p\0", None, Direction::Reverse, 10)
            .unwrap();
        assert_eq!(
            keys(reverse),
            vec![b"p\0c".to_vec(), b"p\0bb".to_vec(), b"p\0b".to_vec()]
        );
        let after = tx
            .scan(Table::Queue, b"p\0", Some(b"p\0b"), Direction::Forward, 10)
            .unwrap();
        assert_eq!(keys(after), vec![b"p\0bb".to_vec(), b"p\0c".to_vec()]);
        assert_eq!(tx.get(Table::Queue, b"p\0a").unwrap(), None);
        assert_eq!(
            base.get(Table::Queue, b"p\0a").unwrap(),
            Some(b"v".to_vec())
        );
    }
}
