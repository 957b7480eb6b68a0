//! Scan floors of the moving-head indexes (the queue, deadlines, per-state listings): for a
//! scan prefix, a key below which the live state holds no entry with that prefix. A forward
//! scan from the head then seeks straight to the floor instead of stepping over every entry
//! consumed since the last compaction (each a put and a deletion marker in RocksDB).
//!
//! ```text
//!   apply's live scan from the head finds first key K  --> floor = K (or the prefix end)
//!   commit_state puts key P with the prefix, P < floor --> floor = P, before the write
//!   import_state_from (a snapshot)                     --> every floor forgotten
//! ```
//!
//! **Invariant:** at every moment, no live key with the prefix lies below its floor. Only the
//! apply path (the one writer, serial) raises floors; readers of older snapshots only use
//! them, and what a raised floor hides from them was deleted since: consumed work.

use crate::state::keys::Table;
use std::collections::HashMap;
use std::sync::Mutex;

/// Floors kept in all; past it they are forgotten (a missing floor only costs speed).
const FLOORS_MAX: usize = 4096;

/// Per table: (scan prefix, floor).
type ByTable = HashMap<Table, Vec<(Vec<u8>, Vec<u8>)>>;

/// The floors of one store; shared by its clones.
#[derive(Default)]
pub(super) struct Floors {
    /// Per table: (scan prefix, floor). Few prefixes per table (one per colony and executor
    /// type for the queue), so a put checks them by a linear pass.
    by_table: Mutex<ByTable>,
}

impl Floors {
    fn tables(&self) -> std::sync::MutexGuard<'_, ByTable> {
        // Floors are hints kept valid under the lock; a panic elsewhere cannot break them.
        self.by_table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where a forward scan of `prefix` may start.
    pub(super) fn get(&self, table: Table, prefix: &[u8]) -> Option<Vec<u8>> {
        let tables = self.tables();
        let floors = tables.get(&table)?;
        floors
            .iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, floor)| floor.clone())
    }

    /// Records that the live state holds no key with `prefix` below `floor`. Only the apply
    /// path calls this, from a scan of the live state.
    pub(super) fn raise(&self, table: Table, prefix: &[u8], floor: Vec<u8>) {
        debug_assert!(floor.as_slice() >= prefix);
        let mut tables = self.tables();
        if tables.values().map(Vec::len).sum::<usize>() >= FLOORS_MAX {
            tables.clear();
        }
        let floors = tables.entry(table).or_default();
        match floors.iter_mut().find(|(p, _)| p == prefix) {
            Some((_, old)) => *old = floor,
            None => floors.push((prefix.to_vec(), floor)),
        }
    }

    /// A key about to be written: every floor above it with a matching prefix comes down to
    /// it. Called before the write becomes visible.
    pub(super) fn lower(&self, table: Table, key: &[u8]) {
        let mut tables = self.tables();
        let Some(floors) = tables.get_mut(&table) else {
            return;
        };
        for (prefix, floor) in floors.iter_mut() {
            if key.starts_with(prefix) && key < floor.as_slice() {
                *floor = key.to_vec();
            }
        }
    }

    /// Forgets every floor (the state was replaced).
    pub(super) fn clear(&self) {
        self.tables().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_below_a_floor_lowers_it_and_only_matching_prefixes() {
        let floors = Floors::default();
        floors.raise(Table::Queue, b"a/", b"a/5".to_vec());
        floors.raise(Table::Queue, b"b/", b"b/9".to_vec());
        floors.lower(Table::Queue, b"a/7");
        assert_eq!(floors.get(Table::Queue, b"a/"), Some(b"a/5".to_vec()));
        floors.lower(Table::Queue, b"a/2");
        assert_eq!(floors.get(Table::Queue, b"a/"), Some(b"a/2".to_vec()));
        assert_eq!(floors.get(Table::Queue, b"b/"), Some(b"b/9".to_vec()));
        floors.lower(Table::Deadlines, b"b/1");
        assert_eq!(floors.get(Table::Queue, b"b/"), Some(b"b/9".to_vec()));
        floors.clear();
        assert_eq!(floors.get(Table::Queue, b"a/"), None);
    }
}
