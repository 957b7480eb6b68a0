//! Backups of a node's replicated state: the file format, writing one from a live store and
//! seeding an empty data dir from one.
//!
//! A backup is every state table read from one RocksDB snapshot (the same export raft
//! snapshots use), so it is consistent while the node keeps serving. It holds no raft log,
//! vote or membership: putting those back would let a node vote twice in a term or apply
//! entries twice, so a restored data dir starts a new mesh from the state (other nodes join
//! it with tokens), and a lost node of a live mesh simply joins again.
//!
//! ```text
//!   "colonymesh-backup/1\n"
//!   chunks: u32 len, bytes ...  (the state export), then u32 0
//!   32 bytes: SHA3-256 of the export  (equals getstatedigestmsg's digest at that index)
//!   u32 len, metadata JSON (BackupMeta; last, because the export tells the applied index)
//! ```
//! Integers are little-endian. A reader checks the digest before anything is written.

use crate::store::Store;
use serde::{Deserialize, Serialize};
use sha3::{Digest, Sha3_256};
use std::io::{Read, Write};
use std::path::Path;

const MAGIC: &[u8] = b"colonymesh-backup/1\n";
/// Largest metadata block accepted when reading.
const META_BYTES_MAX: u32 = 1 << 20;
/// Bytes per chunk written.
const CHUNK_BYTES: usize = 64 << 10;
/// Largest chunk accepted when reading.
const CHUNK_BYTES_MAX: u32 = 16 << 20;

/// What a backup says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupMeta {
    pub format: u32,
    /// The node that made it and its version.
    pub node: String,
    pub version: String,
    /// Unix time (ns) when the export began.
    pub created: i64,
    /// Raft index of the state it holds, in the mesh it came from.
    pub applied_index: u64,
    /// The server owner recorded in the state, if any.
    pub server_id: Option<String>,
}

/// Why a backup could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a colonymesh backup (bad magic); expected format 1")]
    Magic,
    #[error("backup is corrupt: {0}")]
    Corrupt(String),
    #[error("backup I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("backup: {0}")]
    Store(String),
}

/// Writes the backup of `store` to `out`: the export and its digest, then the metadata.
/// Returns the metadata and the digest (hex).
///
/// Blocking: call it on a blocking thread.
pub fn write(
    store: &Store,
    node: &str,
    created: i64,
    out: &mut impl Write,
) -> Result<(BackupMeta, String), BackupError> {
    out.write_all(MAGIC)?;
    let server_id =
        crate::state::auth::server_id(&store.view()).map_err(|e| BackupError::Store(e.0))?;
    let mut meta = BackupMeta {
        format: 1,
        node: node.to_string(),
        version: crate::api::BUILD_VERSION.to_string(),
        created,
        applied_index: 0,
        server_id,
    };
    let mut chunks = ChunkWriter::new(out);
    let applied = store
        .export_state_to(&mut chunks)
        .map_err(|e| BackupError::Store(e.to_string()))?;
    meta.applied_index = crate::raft::applied_index(applied).map_err(BackupError::Store)?;
    let (out, digest) = chunks.finish()?;
    let meta_json = serde_json::to_vec(&meta).expect("metadata always serializes");
    out.write_all(&(meta_json.len() as u32).to_le_bytes())?;
    out.write_all(&meta_json)?;
    out.flush()?;
    Ok((meta, hex::encode(digest)))
}

/// Reads a backup from `input` into the empty store `store`: the state tables, with nothing
/// recorded as applied (the node starts a new mesh on it). Checks the digest before writing.
/// Returns the metadata and the digest (hex).
///
/// Blocking: call it on a blocking thread.
pub fn restore(store: &Store, input: impl Read) -> Result<(BackupMeta, String), BackupError> {
    let mut input = std::io::BufReader::new(input);
    read_magic(&mut input)?;
    let mut chunks = ChunkReader::new(&mut input);
    store
        .import_state_from(&mut chunks, &crate::raft::nothing_applied())
        .map_err(|e| BackupError::Corrupt(e.to_string()))?;
    finish_read(chunks.digest(), &mut input)
}

/// Reads a whole backup without storing it: checks its framing and digest and returns the
/// metadata and the digest (hex).
pub fn inspect(input: impl Read) -> Result<(BackupMeta, String), BackupError> {
    let mut input = std::io::BufReader::new(input);
    read_magic(&mut input)?;
    let mut chunks = ChunkReader::new(&mut input);
    std::io::copy(&mut chunks, &mut std::io::sink()).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => BackupError::Corrupt("the file is truncated".into()),
        _ => BackupError::Corrupt(e.to_string()),
    })?;
    finish_read(chunks.digest(), &mut input)
}

fn read_magic(input: &mut impl Read) -> Result<(), BackupError> {
    let mut magic = vec![0u8; MAGIC.len()];
    input
        .read_exact(&mut magic)
        .map_err(|_| BackupError::Magic)?;
    match magic == MAGIC {
        true => Ok(()),
        false => Err(BackupError::Magic),
    }
}

/// After the chunks: the verified digest and the metadata.
fn finish_read(
    digest: Option<String>,
    input: &mut impl Read,
) -> Result<(BackupMeta, String), BackupError> {
    let digest = digest
        .ok_or_else(|| BackupError::Corrupt("the state ended without its digest".to_string()))?;
    let len = read_u32(input)?;
    if len > META_BYTES_MAX {
        return Err(BackupError::Corrupt(format!("metadata of {len} bytes")));
    }
    let mut meta = vec![0u8; len as usize];
    input.read_exact(&mut meta).map_err(truncated)?;
    let meta: BackupMeta = serde_json::from_slice(&meta)
        .map_err(|e| BackupError::Corrupt(format!("metadata: {e}")))?;
    Ok((meta, digest))
}

/// Seeds the data dir `data_dir` (which must hold no database yet) from the backup file.
pub fn restore_file(data_dir: &Path, file: &Path) -> Result<(BackupMeta, String), BackupError> {
    let db = data_dir.join("db");
    if std::fs::read_dir(&db).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(BackupError::Store(format!(
            "{} already holds a database; restore into an empty data dir",
            db.display()
        )));
    }
    let input = std::fs::File::open(file)
        .map_err(|e| std::io::Error::new(e.kind(), format!("open {}: {e}", file.display())))?;
    std::fs::create_dir_all(&db)?;
    let store = Store::open(&db).map_err(|e| BackupError::Store(e.to_string()))?;
    let restored = restore(&store, input);
    if restored.is_err() {
        drop(store);
        // Nothing half-restored stays behind to be mistaken for a database.
        let _ = std::fs::remove_dir_all(&db);
    }
    restored
}

fn truncated(e: std::io::Error) -> BackupError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => BackupError::Corrupt("the file is truncated".into()),
        _ => BackupError::Io(e),
    }
}

fn read_u32(input: &mut impl Read) -> Result<u32, BackupError> {
    let mut bytes = [0u8; 4];
    input.read_exact(&mut bytes).map_err(truncated)?;
    Ok(u32::from_le_bytes(bytes))
}

/// Frames what is written into chunks and digests it.
struct ChunkWriter<'a, W: Write> {
    out: &'a mut W,
    buffer: Vec<u8>,
    digest: Sha3_256,
}

impl<'a, W: Write> ChunkWriter<'a, W> {
    fn new(out: &'a mut W) -> Self {
        ChunkWriter {
            out,
            buffer: Vec::with_capacity(CHUNK_BYTES),
            digest: Sha3_256::new(),
        }
    }

    fn emit(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.out
            .write_all(&(self.buffer.len() as u32).to_le_bytes())?;
        self.out.write_all(&self.buffer)?;
        self.buffer.clear();
        Ok(())
    }

    /// Writes the last chunk, the end mark and the digest.
    fn finish(mut self) -> std::io::Result<(&'a mut W, [u8; 32])> {
        self.emit()?;
        self.out.write_all(&0u32.to_le_bytes())?;
        let digest: [u8; 32] = self.digest.finalize().into();
        self.out.write_all(&digest)?;
        Ok((self.out, digest))
    }
}

impl<W: Write> Write for ChunkWriter<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.digest.update(bytes);
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK_BYTES {
            self.emit()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.emit()?;
        self.out.flush()
    }
}

/// Reads chunks back as one stream; at their end it checks the digest and reports a
/// mismatch as an error of the last read, so a corrupt backup fails before it is applied.
struct ChunkReader<'a, R: Read> {
    input: &'a mut R,
    left: usize,
    digest: Option<Sha3_256>,
    verified: Option<String>,
}

impl<'a, R: Read> ChunkReader<'a, R> {
    fn new(input: &'a mut R) -> Self {
        ChunkReader {
            input,
            left: 0,
            digest: Some(Sha3_256::new()),
            verified: None,
        }
    }

    /// The digest (hex), once the end was reached and it matched.
    fn digest(&self) -> Option<String> {
        self.verified.clone()
    }
}

impl<R: Read> Read for ChunkReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let corrupt = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        while self.left == 0 {
            let Some(digest) = self.digest.take() else {
                return Ok(0);
            };
            let mut len = [0u8; 4];
            self.input.read_exact(&mut len)?;
            let len = u32::from_le_bytes(len);
            if len == 0 {
                let mut stored = [0u8; 32];
                self.input.read_exact(&mut stored)?;
                let computed: [u8; 32] = digest.finalize().into();
                if computed != stored {
                    return Err(corrupt(format!(
                        "digest mismatch: the file says {}, its state hashes to {}",
                        hex::encode(stored),
                        hex::encode(computed)
                    )));
                }
                self.verified = Some(hex::encode(computed));
                return Ok(0);
            }
            if len > CHUNK_BYTES_MAX {
                return Err(corrupt(format!("chunk of {len} bytes")));
            }
            self.left = len as usize;
            self.digest = Some(digest);
        }
        let want = buf.len().min(self.left);
        let read = self.input.read(&mut buf[..want])?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(digest) = self.digest.as_mut() {
            digest.update(&buf[..read]);
        }
        self.left -= read;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::keys::Table;
    use crate::state::tx::{StateRead, Writes};

    /// A store with `n` entries in two tables, recorded as applied at raft index 41.
    fn filled(dir: &Path, n: usize) -> Store {
        let store = Store::open(&dir.join("source")).unwrap();
        let mut writes = Writes::new();
        for i in 0..n {
            let value = format!("value {i} {}", "x".repeat(i % 300)).into_bytes();
            let process = format!("p{i:05}").into_bytes();
            writes.insert((Table::Processes, process), Some(value));
            let colony = format!("c{i:05}").into_bytes();
            writes.insert((Table::Colonies, colony), Some(b"c".to_vec()));
        }
        let applied = concat!(
            r#"[{"leader_id":{"term":3,"node_id":7},"index":41},"#,
            r#"{"log_id":null,"membership":{"configs":[],"nodes":{}}}]"#
        );
        store.commit_state(writes, applied.as_bytes()).unwrap();
        store
    }

    #[test]
    fn a_backup_round_trips_and_keeps_no_raft_state() {
        let dir = tempfile::tempdir().unwrap();
        let source = filled(dir.path(), 3000);
        let mut file = Vec::new();
        let (meta, digest) = write(&source, "n1", 123, &mut file).unwrap();
        assert_eq!((meta.applied_index, meta.node.as_str()), (41, "n1"));
        assert!(
            file.len() > 3 * CHUNK_BYTES,
            "several chunks: {}",
            file.len()
        );
        let (source_index, source_digest) = crate::raft::state_digest(&source).unwrap();
        assert_eq!((source_index, &source_digest), (41, &digest));

        let target = Store::open(&dir.path().join("target")).unwrap();
        let (read_meta, read_digest) = restore(&target, file.as_slice()).unwrap();
        assert_eq!((read_meta, read_digest), (meta, digest.clone()));
        let (index, restored) = crate::raft::state_digest(&target).unwrap();
        assert_eq!(restored, digest, "the same state");
        assert_eq!(index, 0, "nothing recorded as applied: raft starts afresh");
        let view = target.view();
        assert!(view.get(Table::Processes, b"p02999").unwrap().is_some());
    }

    #[test]
    fn corrupt_truncated_and_foreign_files_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let source = filled(dir.path(), 500);
        let mut file = Vec::new();
        write(&source, "n1", 1, &mut file).unwrap();
        let target = Store::open(&dir.path().join("target")).unwrap();
        let empty = crate::raft::state_digest(&target).unwrap();

        let mut flipped = file.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        let error = restore(&target, flipped.as_slice())
            .unwrap_err()
            .to_string();
        assert!(error.contains("corrupt"), "{error}");
        let truncated = &file[..file.len() / 3];
        let error = restore(&target, truncated).unwrap_err().to_string();
        assert!(
            error.contains("corrupt") || error.contains("truncated"),
            "{error}"
        );
        let error = restore(&target, &b"PK\x03\x04 a zip file"[..]).unwrap_err();
        assert!(matches!(error, BackupError::Magic), "{error}");
        assert_eq!(
            crate::raft::state_digest(&target).unwrap(),
            empty,
            "nothing written"
        );
    }

    #[test]
    fn restoring_into_a_data_dir_with_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let source = filled(dir.path(), 10);
        let path = dir.path().join("backup.cmb");
        let mut file = std::fs::File::create(&path).unwrap();
        write(&source, "n1", 1, &mut file).unwrap();
        drop(file);
        let data_dir = dir.path().join("data");
        restore_file(&data_dir, &path).unwrap();
        let error = restore_file(&data_dir, &path).unwrap_err().to_string();
        assert!(error.contains("already holds a database"), "{error}");
    }
}
