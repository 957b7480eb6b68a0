//! RocksDB: the one place that imports `rocksdb`. Holds the raft log, raft metadata, the
//! state-machine tables (one column family per `state::keys::Table`) and the latest snapshot.
//!
//! ```text
//!   raft::log_storage  --append (fsync) / truncate / purge-->  cf raft_log, raft_meta
//!   raft::state_machine --commit_state(writes + applied)-->   cf sm_* + sm_applied (one batch)
//!   api (reads)        --StateRead::get / scan-->             cf sm_*
//! ```
//!
//! The store deals in bytes; it knows nothing of openraft types (the raft module encodes them).

mod floors;
mod log;
mod snapshot;

pub use snapshot::StoredSnapshot;

use crate::state::keys::Table;
use crate::state::tx::{Direction, Entry, StateRead, StoreError, Writes};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch,
    WriteOptions, DB,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const CF_RAFT_LOG: &str = "raft_log";
const CF_RAFT_META: &str = "raft_meta";
const CF_SNAPSHOT: &str = "raft_snapshot";
/// Last applied log id and membership, written in the same batch as the state they describe.
const CF_APPLIED: &str = "sm_applied";

/// All memtables of all column families together; past it the largest is flushed.
const MEMTABLES_BYTES_MAX: usize = 64 << 20;
/// One column family's memtable.
const MEMTABLE_BYTES: usize = 16 << 20;
/// The memtable of an index whose head moves (the queue, deadlines, per-state listings):
/// entries there are deleted soon after they are written, and every seek to the head skips
/// the deletions (tombstones) still in the memtable or in level-0 files. Small memtables and
/// early compaction keep that number bounded; measured: with 16 MiB, lifecycle throughput on
/// 3 nodes fell from 363/s to 151/s over 20,000 processes.
const MOVING_HEAD_MEMTABLE_BYTES: usize = 512 << 10;
/// Level-0 files of a moving-head index that start a compaction (which drops tombstones).
const MOVING_HEAD_L0_TRIGGER: i32 = 2;

/// Indexes whose entries are deleted from the front as they are consumed.
const MOVING_HEAD: [Table; 7] = [
    Table::Queue,
    Table::ByState,
    Table::Deadlines,
    Table::Assigned,
    Table::GraphsByState,
    Table::CronsDue,
    Table::GeneratorsDue,
];

fn moving_head(name: &str) -> bool {
    MOVING_HEAD.iter().any(|t| t.name() == name)
}
/// The block cache shared by every column family (data, index and filter blocks).
const BLOCK_CACHE_BYTES: usize = 64 << 20;
/// Bloom filter bits per key in table files: a read of an absent key skips most files.
const BLOOM_BITS_PER_KEY: f64 = 10.0;
/// A bloom filter over the memtable of the deduplication records, as a share of its size:
/// apply looks up every client command's request id there, and nearly all are absent, so
/// the lookup skips the memtable's skip list.
const DEDUP_MEMTABLE_BLOOM_RATIO: f64 = 0.05;

/// A failure of the store; the node treats it as fatal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open rocksdb at {path}: {source}")]
    Open {
        path: PathBuf,
        source: rocksdb::Error,
    },
    #[error("rocksdb {operation}: {source}")]
    Io {
        operation: &'static str,
        source: rocksdb::Error,
    },
    #[error("corrupt store: {0}")]
    Corrupt(String),
    #[error("snapshot file: {0}")]
    File(String),
    #[error(
        "the database at {path} has storage format {found}, newer than this build reads \
         ({supported}): run the newer colonymesh, or restore a backup into an empty data dir"
    )]
    Format {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
}

/// The layout of the database (column families, key encodings) this build writes. Recorded
/// at creation; a build refuses a database of a newer format rather than misread it, and
/// upgrades an older one in `open` (none to upgrade from yet: format 1 is the first).
pub const STORAGE_FORMAT: u32 = 1;
/// Where the format is recorded (in the node-local raft metadata, never replicated).
const FORMAT_KEY: &str = "storage_format";

impl From<Error> for StoreError {
    fn from(error: Error) -> StoreError {
        StoreError(error.to_string())
    }
}

fn io(operation: &'static str) -> impl FnOnce(rocksdb::Error) -> Error {
    move |source| Error::Io { operation, source }
}

/// The node's RocksDB database. Cheap to clone; all clones share one `DB`.
#[derive(Clone)]
pub struct Store {
    /// Shared handle; RocksDB is internally synchronized for reads and batch writes.
    db: Arc<DB>,
    /// Where head scans of the moving-head indexes may start (see `floors`).
    floors: Arc<floors::Floors>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .finish()
    }
}

fn column_families() -> Vec<&'static str> {
    let mut names = vec![CF_RAFT_LOG, CF_RAFT_META, CF_SNAPSHOT, CF_APPLIED];
    names.extend(Table::ALL.iter().map(|t| t.name()));
    names
}

impl Store {
    /// Opens (or creates) the database under `path` with every column family.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // Bound background work to the small machines this runs on.
        options.increase_parallelism(2);
        // Bound memory whatever the size of the state: all memtables together, and one block
        // cache shared by every column family that also holds index and filter blocks.
        options.set_db_write_buffer_size(MEMTABLES_BYTES_MAX);
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        let mut cf_options = Options::default();
        cf_options.set_block_based_table_factory(&table);
        cf_options.set_write_buffer_size(MEMTABLE_BYTES);
        let mut moving_options = cf_options.clone();
        moving_options.set_write_buffer_size(MOVING_HEAD_MEMTABLE_BYTES);
        moving_options.set_level_zero_file_num_compaction_trigger(MOVING_HEAD_L0_TRIGGER);
        let mut dedup_options = cf_options.clone();
        dedup_options.set_memtable_whole_key_filtering(true);
        dedup_options.set_memtable_prefix_bloom_ratio(DEDUP_MEMTABLE_BLOOM_RATIO);
        let descriptors = column_families().into_iter().map(|name| {
            let options = match name {
                _ if moving_head(name) => moving_options.clone(),
                _ if name == Table::Requests.name() => dedup_options.clone(),
                _ => cf_options.clone(),
            };
            ColumnFamilyDescriptor::new(name, options)
        });
        let db =
            DB::open_cf_descriptors(&options, path, descriptors).map_err(|source| Error::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let store = Store {
            db: Arc::new(db),
            floors: Arc::default(),
        };
        store.check_format(path)?;
        store.prepare_snapshot_dir()?;
        Ok(store)
    }

    /// Records `STORAGE_FORMAT` in a new database; refuses one of a newer format.
    fn check_format(&self, path: &Path) -> Result<(), Error> {
        let found = match self.raft_meta(FORMAT_KEY)? {
            // A database from before formats were recorded has format 1's layout.
            None => {
                self.set_raft_meta(FORMAT_KEY, &STORAGE_FORMAT.to_le_bytes(), true)?;
                return Ok(());
            }
            Some(bytes) => {
                let bytes: [u8; 4] = bytes.as_slice().try_into().map_err(|_| {
                    Error::Corrupt(format!("storage format record of {} bytes", bytes.len()))
                })?;
                u32::from_le_bytes(bytes)
            }
        };
        if found > STORAGE_FORMAT {
            return Err(Error::Format {
                path: path.to_path_buf(),
                found,
                supported: STORAGE_FORMAT,
            });
        }
        Ok(())
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every column family is created at open")
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), Error> {
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db
            .write_opt(batch, &options)
            .map_err(io("write batch"))
    }

    /// Commits one command batch's state writes together with the new applied-state record.
    /// Not fsynced: the raft log is, and entries after a lost `applied` record are re-applied.
    pub fn commit_state(&self, writes: Writes, applied: &[u8]) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        for ((table, key), value) in writes {
            let cf = self.cf(table.name());
            match value {
                Some(value) => {
                    // Before the write is visible, so no reader ever starts above it.
                    if MOVING_HEAD.contains(&table) {
                        self.floors.lower(table, &key);
                    }
                    batch.put_cf(cf, key, value)
                }
                None => batch.delete_cf(cf, key),
            }
        }
        batch.put_cf(self.cf(CF_APPLIED), b"applied", applied);
        self.write(batch, false)
    }

    /// The applied-state record last committed with the state, if any.
    pub fn applied(&self) -> Result<Option<Vec<u8>>, Error> {
        self.db
            .get_cf(self.cf(CF_APPLIED), b"applied")
            .map_err(io("read applied state"))
    }

    /// Reads a raft metadata value (vote, committed, last purged).
    pub fn raft_meta(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.db
            .get_cf(self.cf(CF_RAFT_META), key)
            .map_err(io("read raft meta"))
    }

    /// Writes a raft metadata value, fsynced when `sync` (the vote must be durable).
    pub fn set_raft_meta(&self, key: &str, value: &[u8], sync: bool) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_RAFT_META), key, value);
        self.write(batch, sync)
    }
}

/// The smallest key greater than every key starting with `prefix` (`None`: no such key).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Where a scan starts for `prefix`, `after` and `direction`; `end` is `prefix_end(prefix)`.
fn scan_mode<'k>(
    prefix: &'k [u8],
    end: &'k Option<Vec<u8>>,
    after: Option<&'k [u8]>,
    direction: Direction,
) -> IteratorMode<'k> {
    match (direction, after) {
        (Direction::Forward, Some(after)) => IteratorMode::From(after, rocksdb::Direction::Forward),
        (Direction::Forward, None) => IteratorMode::From(prefix, rocksdb::Direction::Forward),
        (Direction::Reverse, Some(after)) => IteratorMode::From(after, rocksdb::Direction::Reverse),
        (Direction::Reverse, None) => match end {
            Some(end) => IteratorMode::From(end, rocksdb::Direction::Reverse),
            None => IteratorMode::End,
        },
    }
}

type RawItem = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>;

/// The entries of a scan from an iterator positioned by `scan_mode`.
fn collect_scan(
    items: impl Iterator<Item = RawItem>,
    prefix: &[u8],
    end: &Option<Vec<u8>>,
    after: Option<&[u8]>,
    direction: Direction,
    limit: usize,
) -> Result<Vec<Entry>, StoreError> {
    let mut entries = Vec::new();
    for item in items {
        let (key, value) = item.map_err(io("scan state"))?;
        if !key.starts_with(prefix) {
            // Seeking lands on at most one key outside the range at the near end
            // (the seek key itself or a neighbour); past the prefix we are done.
            let before_range = match direction {
                Direction::Forward => key.as_ref() < prefix,
                Direction::Reverse => end.as_deref().is_some_and(|e| key.as_ref() >= e),
            };
            if before_range {
                continue;
            }
            break;
        }
        let beyond_after = match (direction, after) {
            (_, None) => true,
            (Direction::Forward, Some(after)) => key.as_ref() > after,
            (Direction::Reverse, Some(after)) => key.as_ref() < after,
        };
        if !beyond_after {
            continue;
        }
        entries.push((key.into_vec(), value.into_vec()));
        if entries.len() >= limit {
            break;
        }
    }
    Ok(entries)
}

/// Read options that read as of `snapshot`, or the live state when there is none.
fn read_options(snapshot: Option<&rocksdb::Snapshot<'_>>) -> rocksdb::ReadOptions {
    let mut options = rocksdb::ReadOptions::default();
    if let Some(snapshot) = snapshot {
        options.set_snapshot(snapshot);
    }
    options
}

impl Store {
    /// The one read path for `get`: as of `snapshot` (a `View`), or live (apply).
    fn get_at(
        &self,
        snapshot: Option<&rocksdb::Snapshot<'_>>,
        table: Table,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let options = read_options(snapshot);
        Ok(self
            .db
            .get_cf_opt(self.cf(table.name()), key, &options)
            .map_err(io("read state"))?)
    }

    /// The one read path for `scan`: as of `snapshot` (a `View`), or live. A forward scan of a
    /// moving-head index from its head starts at the prefix's floor; apply's (`raise`, live)
    /// raises the floor to the first key it finds.
    #[allow(clippy::too_many_arguments)]
    fn scan_at(
        &self,
        snapshot: Option<&rocksdb::Snapshot<'_>>,
        raise: bool,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let end = prefix_end(prefix);
        let from_head = after.is_none()
            && direction == Direction::Forward
            && !prefix.is_empty()
            && MOVING_HEAD.contains(&table);
        let floor = match from_head {
            true => self.floors.get(table, prefix),
            false => None,
        };
        let start = floor.as_deref().unwrap_or(prefix);
        let mode = match &floor {
            Some(floor) => IteratorMode::From(floor, rocksdb::Direction::Forward),
            None => scan_mode(prefix, &end, after, direction),
        };
        let mut options = read_options(snapshot);
        // Bounds stop the iterator at the prefix instead of skipping deleted entries beyond it.
        if !prefix.is_empty() {
            options.set_iterate_lower_bound(start.to_vec());
        }
        if let Some(end) = &end {
            options.set_iterate_upper_bound(end.clone());
        }
        let items = self
            .db
            .iterator_cf_opt(self.cf(table.name()), options, mode);
        let entries = collect_scan(items, prefix, &end, after, direction, limit)?;
        if from_head && raise {
            debug_assert!(
                snapshot.is_none(),
                "floors are raised from the live state only"
            );
            let first = entries.first().map(|(key, _)| key.clone());
            if let Some(floor) = first.or_else(|| end.clone()) {
                self.floors.raise(table, prefix, floor);
            }
        }
        Ok(entries)
    }
}

/// Reads of the live database (e.g. the tick loop's next deadline). They use scan floors but
/// never raise them: a reader racing apply could raise one over a key just written.
impl StateRead for Store {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_at(None, table, key)
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.scan_at(None, false, table, prefix, after, direction, limit)
    }
}

/// Apply's reads of the live database: the only writer, serial with `commit_state`, sees its
/// own commits, needs no snapshot, and is the one reader that raises scan floors.
pub struct Applying<'a>(&'a Store);

impl Store {
    /// The live state as apply reads it.
    pub fn applying(&self) -> Applying<'_> {
        Applying(self)
    }
}

impl StateRead for Applying<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get_at(None, table, key)
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.0
            .scan_at(None, true, table, prefix, after, direction, limit)
    }
}

/// A consistent, read-only view of the state at one point in time (a RocksDB snapshot).
/// API reads go through one, so an index entry and the record it points to always agree even
/// while commands are applied concurrently.
pub struct View<'a> {
    store: &'a Store,
    snapshot: rocksdb::Snapshot<'a>,
}

impl Store {
    /// A consistent view of the state as of now.
    pub fn view(&self) -> View<'_> {
        View {
            store: self,
            snapshot: self.db.snapshot(),
        }
    }
}

impl StateRead for View<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get_at(Some(&self.snapshot), table, key)
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        after: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let snapshot = Some(&self.snapshot);
        self.store
            .scan_at(snapshot, false, table, prefix, after, direction, limit)
    }
}

#[cfg(test)]
mod tests;
