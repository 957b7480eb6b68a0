//! Store conformance: the RocksDB store answers every `StateRead` query exactly as the
//! in-memory `MemState` used by the apply unit tests; plus log and snapshot behaviour.

use super::*;
use crate::state::tx::{MemState, Tx};

fn keys_for_test() -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for a in [&b"a"[..], b"ab", b"b", b"\xff", b"\xff\xff"] {
        for b in [&b""[..], b"\0", b"\0x", b"\0\xff", b"\x01"] {
            keys.push([a, b].concat());
        }
    }
    keys
}

#[test]
fn scans_agree_with_mem_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut mem = MemState::default();
    let mut tx = Tx::new(&mem);
    for (i, key) in keys_for_test().into_iter().enumerate() {
        tx.put(Table::Queue, key, vec![i as u8]);
    }
    tx.put(Table::ByState, b"a".to_vec(), b"other table".to_vec());
    let writes = tx.into_writes();
    store.commit_state(writes.clone(), b"applied").unwrap();
    mem.commit(writes);

    let prefixes: [&[u8]; 6] = [b"", b"a", b"a\0", b"\xff", b"\xff\xff", b"zz"];
    for prefix in prefixes {
        let mut afters: Vec<Option<Vec<u8>>> = vec![None];
        afters.extend(keys_for_test().into_iter().map(Some));
        for after in &afters {
            for direction in [Direction::Forward, Direction::Reverse] {
                for limit in [1, 3, 100] {
                    let args = (Table::Queue, prefix, after.as_deref(), direction, limit);
                    let expected = mem.scan(args.0, args.1, args.2, args.3, args.4).unwrap();
                    let actual = store.scan(args.0, args.1, args.2, args.3, args.4).unwrap();
                    assert_eq!(
                        actual, expected,
                        "prefix {prefix:?} after {after:?} {direction:?} {limit}"
                    );
                }
            }
        }
    }
    assert_eq!(store.applied().unwrap().as_deref(), Some(&b"applied"[..]));
}

#[test]
fn log_append_range_truncate_purge_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let entries = (1..=10).map(|i| (i, vec![i as u8])).collect();
        store.log_append(entries).unwrap();
        store.log_sync().unwrap();
        store.log_truncate_from(8).unwrap();
        store.log_purge_upto(3, b"purged").unwrap();
        store.set_raft_meta("vote", b"v", true).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let indexes: Vec<u64> = store
        .log_range(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(indexes, vec![4, 5, 6, 7]);
    assert_eq!(
        store.log_range(5, 7).unwrap(),
        vec![(5, vec![5]), (6, vec![6])]
    );
    assert_eq!(store.log_last().unwrap(), Some((7, vec![7])));
    assert_eq!(store.raft_meta("vote").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(
        store.raft_meta("last_purged").unwrap().as_deref(),
        Some(&b"purged"[..])
    );
}

#[test]
fn export_import_round_trip_replaces_state() {
    let source_dir = tempfile::tempdir().unwrap();
    let source = Store::open(source_dir.path()).unwrap();
    let mut writes = crate::state::tx::Writes::new();
    writes.insert((Table::Processes, b"p1".to_vec()), Some(b"{}".to_vec()));
    writes.insert(
        (Table::Colonies, b"dev".to_vec()),
        Some(b"{\"name\":\"dev\"}".to_vec()),
    );
    source.commit_state(writes, b"applied-7").unwrap();
    let (blob, applied) = source.export_state().unwrap();
    assert_eq!(applied.as_deref(), Some(&b"applied-7"[..]));

    let target_dir = tempfile::tempdir().unwrap();
    let target = Store::open(target_dir.path()).unwrap();
    let mut stale = crate::state::tx::Writes::new();
    stale.insert((Table::Processes, b"stale".to_vec()), Some(b"x".to_vec()));
    target.commit_state(stale, b"old").unwrap();
    target.import_state(&blob, b"applied-7").unwrap();
    assert_eq!(target.get(Table::Processes, b"stale").unwrap(), None);
    assert_eq!(
        target.get(Table::Processes, b"p1").unwrap().as_deref(),
        Some(&b"{}"[..])
    );
    assert_eq!(target.export_state().unwrap().0, blob);
    assert!(
        target.import_state(&blob[..blob.len() - 1], b"x").is_err(),
        "truncated blob refused"
    );
}

/// - a snapshot file holds the same export as memory; once kept it is the current snapshot
/// - keeping a newer one removes the older file; half-written files are removed at open
#[test]
fn snapshot_files_are_kept_replaced_and_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut writes = crate::state::tx::Writes::new();
    writes.insert((Table::Processes, b"p1".to_vec()), Some(b"{}".to_vec()));
    store.commit_state(writes, b"applied-3").unwrap();
    assert_eq!(store.load_snapshot().unwrap(), None);

    let (file, applied) = store.write_snapshot_file().unwrap();
    assert_eq!(applied.as_deref(), Some(&b"applied-3"[..]));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        store.export_state().unwrap().0
    );
    let first = store.keep_snapshot(&file, b"meta-1").unwrap();
    let stored = store.load_snapshot().unwrap().expect("kept");
    assert_eq!(
        (stored.meta.as_slice(), &stored.file),
        (&b"meta-1"[..], &first)
    );

    let (file, _) = store.write_snapshot_file().unwrap();
    let second = store.keep_snapshot(&file, b"meta-2").unwrap();
    assert!(!first.exists(), "older snapshot removed");
    assert_eq!(store.load_snapshot().unwrap().unwrap().file, second);

    let (partial, _) = store.new_snapshot_file().unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(!partial.exists(), "half-written file removed at open");
    assert!(second.exists());
    assert_eq!(store.load_snapshot().unwrap().unwrap().meta, b"meta-2");
}

#[test]
fn a_database_records_its_format_and_a_newer_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.raft_meta("storage_format").unwrap(),
        Some(super::STORAGE_FORMAT.to_le_bytes().to_vec())
    );
    let newer = (super::STORAGE_FORMAT + 1).to_le_bytes();
    store.set_raft_meta("storage_format", &newer, true).unwrap();
    drop(store);
    let error = Store::open(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("storage format 2") && error.contains("newer than this build reads (1)"),
        "{error}"
    );
}

/// Scan floors never hide a live key: a random sequence of puts and deletes in a moving-head
/// index (the queue) with apply's head scans (which raise floors) in between, checked after
/// every step against `MemState` through apply's reads, live reads and a snapshot view.
#[test]
fn head_scans_with_floors_agree_with_mem_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut mem = MemState::default();
    let prefixes: [&[u8]; 3] = [b"c\0a\0", b"c\0b\0", b"c\0"];
    // A small deterministic generator (xorshift), so failures replay.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for step in 0..2000 {
        let mut tx = Tx::new(&mem);
        for _ in 0..=next(3) {
            let prefix = prefixes[next(2) as usize];
            let key = [prefix, format!("{:04}", next(200)).as_bytes()].concat();
            match next(3) {
                0 => tx.delete(Table::Queue, key),
                _ => tx.put(Table::Queue, key, vec![1]),
            }
        }
        let writes = tx.into_writes();
        store.commit_state(writes.clone(), b"applied").unwrap();
        mem.commit(writes);
        for prefix in prefixes {
            let limit = 1 + next(4) as usize;
            let expected = mem.scan(Table::Queue, prefix, None, Direction::Forward, limit);
            let expected = expected.unwrap();
            let applying = store.applying();
            let raised = applying.scan(Table::Queue, prefix, None, Direction::Forward, limit);
            assert_eq!(raised.unwrap(), expected, "step {step} apply {prefix:?}");
            let live = store.scan(Table::Queue, prefix, None, Direction::Forward, limit);
            assert_eq!(live.unwrap(), expected, "step {step} live {prefix:?}");
            let view = store.view();
            let seen = view.scan(Table::Queue, prefix, None, Direction::Forward, limit);
            assert_eq!(seen.unwrap(), expected, "step {step} view {prefix:?}");
        }
    }
}
