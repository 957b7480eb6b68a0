//! State snapshots: every state table read from one RocksDB snapshot and streamed into a file,
//! and such a file installed in place of the current state; plus the latest snapshot file kept
//! for followers. Snapshot data never sits whole in memory on the building or sending side.
//!
//! Export format (all integers little-endian u32): repeated `table_index, key_len, key,
//! value_len, value`. Tables are in `Table::ALL` order.
//!
//! Files live in `<db>/snapshots/`: `current-<n>.snap` is the snapshot named by the
//! `raft_snapshot` column family (with its metadata); `*.part` files are being built or received
//! and are removed at open.

use super::{io, Error, Store, CF_APPLIED, CF_SNAPSHOT};
use crate::state::keys::Table;
use rocksdb::{IteratorMode, WriteBatch};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Subdirectory of the database holding snapshot files.
const SNAPSHOT_DIR: &str = "snapshots";
/// Buffer between the table iterators and a snapshot file.
const FILE_BUFFER_BYTES: usize = 1 << 20;

fn file_error(operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.display().to_string();
    move |e| Error::File(format!("{operation} {path}: {e}"))
}

fn put_bytes(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len()).expect("keys and values are far below 4 GiB");
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)
}

/// What a failed read of snapshot data means: an early end is a truncated snapshot.
fn read_error(e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Corrupt("snapshot data is truncated".into()),
        _ => Error::File(format!("read snapshot data: {e}")),
    }
}

/// Reads one u32, or `None` at a clean end of input (before its first byte).
fn take_u32(input: &mut impl BufRead) -> Result<Option<u32>, Error> {
    if input.fill_buf().map_err(read_error)?.is_empty() {
        return Ok(None);
    }
    let mut bytes = [0u8; 4];
    input.read_exact(&mut bytes).map_err(read_error)?;
    Ok(Some(u32::from_le_bytes(bytes)))
}

/// Reads one length-prefixed byte string.
fn take_bytes(input: &mut impl BufRead) -> Result<Vec<u8>, Error> {
    let len =
        take_u32(input)?.ok_or_else(|| read_error(std::io::ErrorKind::UnexpectedEof.into()))?;
    let mut bytes = vec![0u8; len as usize];
    input.read_exact(&mut bytes).map_err(read_error)?;
    Ok(bytes)
}

/// Flushes and fsyncs the directory `dir`, so renames and removals in it are durable.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(file_error("sync directory", dir))
}

impl Store {
    fn snapshot_dir(&self) -> PathBuf {
        self.db.path().join(SNAPSHOT_DIR)
    }

    /// Creates the snapshot directory and removes files left half-written by a crash.
    pub(super) fn prepare_snapshot_dir(&self) -> Result<(), Error> {
        let dir = self.snapshot_dir();
        std::fs::create_dir_all(&dir).map_err(file_error("create", &dir))?;
        let entries = std::fs::read_dir(&dir).map_err(file_error("list", &dir))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "part") {
                std::fs::remove_file(&path).map_err(file_error("remove", &path))?;
            }
        }
        Ok(())
    }

    /// A new, empty file in the snapshot directory (a `.part` until `keep_snapshot`).
    pub fn new_snapshot_file(&self) -> Result<(PathBuf, File), Error> {
        // A random name: never the name of a file kept before, even across restarts.
        let name = crate::clock::Clock::request_id(&crate::clock::SystemClock);
        let path = self.snapshot_dir().join(format!("{name}.part"));
        // Readable too: a received snapshot is read back to install it.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(file_error("create", &path))?;
        Ok((path, file))
    }

    /// Streams all state tables and returns the applied record, all read from one consistent
    /// point in time.
    pub fn export_state_to(&self, out: &mut impl Write) -> Result<Option<Vec<u8>>, Error> {
        let write_error = |e: std::io::Error| Error::File(format!("write state export: {e}"));
        let snapshot = self.db.snapshot();
        for (index, table) in Table::ALL.iter().enumerate() {
            let cf = self.cf(table.name());
            for item in snapshot.iterator_cf(cf, IteratorMode::Start) {
                let (key, value) = item.map_err(io("export state"))?;
                out.write_all(&(index as u32).to_le_bytes())
                    .map_err(write_error)?;
                put_bytes(out, &key).map_err(write_error)?;
                put_bytes(out, &value).map_err(write_error)?;
            }
        }
        out.flush().map_err(write_error)?;
        snapshot
            .get_cf(self.cf(CF_APPLIED), b"applied")
            .map_err(io("export applied"))
    }

    /// All state and the applied record in memory (small states and tests).
    pub fn export_state(&self) -> Result<(Vec<u8>, Option<Vec<u8>>), Error> {
        let mut out = Vec::new();
        let applied = self.export_state_to(&mut out)?;
        Ok((out, applied))
    }

    /// Writes the current state to a new fsynced `.part` file; returns it and the applied
    /// record of the state it holds. `keep_snapshot` makes it the current snapshot.
    pub fn write_snapshot_file(&self) -> Result<(PathBuf, Option<Vec<u8>>), Error> {
        let (path, file) = self.new_snapshot_file()?;
        let mut out = BufWriter::with_capacity(FILE_BUFFER_BYTES, file);
        let applied = self.export_state_to(&mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| Error::File(format!("write {}: {e}", path.display())))?;
        file.sync_all().map_err(file_error("sync", &path))?;
        Ok((path, applied))
    }

    /// Replaces all state with the export read from `input` and records `applied`, in one
    /// fsynced batch (a crash leaves either the old state or the new).
    pub fn import_state_from(&self, input: impl Read, applied: &[u8]) -> Result<(), Error> {
        let mut input = BufReader::with_capacity(FILE_BUFFER_BYTES, input);
        let mut batch = WriteBatch::default();
        for table in Table::ALL {
            let cf = self.cf(table.name());
            for item in self.db.iterator_cf(cf, IteratorMode::Start) {
                let (key, _) = item.map_err(io("clear state"))?;
                batch.delete_cf(cf, key);
            }
        }
        while let Some(index) = take_u32(&mut input)? {
            let table = Table::ALL
                .get(index as usize)
                .ok_or_else(|| Error::Corrupt(format!("snapshot names table {index}")))?;
            let key = take_bytes(&mut input)?;
            let value = take_bytes(&mut input)?;
            batch.put_cf(self.cf(table.name()), key, value);
        }
        batch.put_cf(self.cf(CF_APPLIED), b"applied", applied);
        // No floor of the old state may hide a key of the new one.
        self.floors.clear();
        self.write(batch, true)
    }

    /// `import_state_from` a blob in memory.
    pub fn import_state(&self, blob: &[u8], applied: &[u8]) -> Result<(), Error> {
        self.import_state_from(blob, applied)
    }

    /// Makes `file` (a fsynced file from `new_snapshot_file`) the current snapshot, described
    /// by `meta`; durable when it returns. Older snapshot files are removed. Returns the
    /// file's new path.
    pub fn keep_snapshot(&self, file: &Path, meta: &[u8]) -> Result<PathBuf, Error> {
        let dir = self.snapshot_dir();
        let name = file
            .file_stem()
            .map(|stem| format!("current-{}.snap", stem.to_string_lossy()))
            .ok_or_else(|| Error::Corrupt(format!("bad snapshot file {}", file.display())))?;
        let current = dir.join(&name);
        std::fs::rename(file, &current).map_err(file_error("rename", file))?;
        sync_dir(&dir)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_SNAPSHOT), b"meta", meta);
        batch.put_cf(self.cf(CF_SNAPSHOT), b"file", name.as_bytes());
        // A blob kept inline by an older version is replaced by the file.
        batch.delete_cf(self.cf(CF_SNAPSHOT), b"data");
        self.write(batch, true)?;
        let entries = std::fs::read_dir(&dir).map_err(file_error("list", &dir))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path != current && path.extension().is_some_and(|e| e == "snap") {
                // A reader (a snapshot being sent) keeps its open file until it finishes.
                std::fs::remove_file(&path).map_err(file_error("remove", &path))?;
            }
        }
        Ok(current)
    }

    /// The current snapshot: its metadata and file, if one was kept.
    pub fn load_snapshot(&self) -> Result<Option<StoredSnapshot>, Error> {
        let cf = self.cf(CF_SNAPSHOT);
        let meta = self.db.get_cf(cf, b"meta").map_err(io("read snapshot"))?;
        let name = self.db.get_cf(cf, b"file").map_err(io("read snapshot"))?;
        let (Some(meta), Some(name)) = (meta, name) else {
            return Ok(None);
        };
        let name = String::from_utf8(name)
            .map_err(|_| Error::Corrupt("snapshot file name is not UTF-8".into()))?;
        Ok(Some(StoredSnapshot {
            meta,
            file: self.snapshot_dir().join(name),
        }))
    }
}

/// A kept snapshot: its metadata as the raft module encoded it, and the file with its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub meta: Vec<u8>,
    pub file: PathBuf,
}
