//! Tidy checks over the source tree: module docs, line length, no should-panic tests, and the
//! architecture's import boundaries (each heavy dependency in one module).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for dir in [
        "node/src",
        "proto/src",
        "tests/src",
        "tests/tests",
        "bench/src",
        "chaos/src",
        "fuzz/fuzz_targets",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read source");
            let relative = path
                .strip_prefix(root())
                .expect("under root")
                .display()
                .to_string();
            (relative, text)
        })
        .collect()
}

/// Every file opens with `//!`, has lines of at most 100 columns and no should-panic tests.
#[test]
fn files_have_docs_and_short_lines() {
    let mut problems = Vec::new();
    for (path, text) in sources() {
        if !text.starts_with("//!") {
            problems.push(format!("{path}: does not open with a //! module doc"));
        }
        for (n, line) in text.lines().enumerate() {
            if line.chars().count() > 100 {
                problems.push(format!("{path}:{}: longer than 100 columns", n + 1));
            }
        }
        if text.contains(&["#[should", "_panic]"].concat()) {
            problems.push(format!("{path}: uses should_panic; assert on Err instead"));
        }
    }
    assert!(
        problems.is_empty(),
        "tidy problems:\n{}",
        problems.join("\n")
    );
}

/// Each heavy dependency is imported in one module; only `clock` reads time or randomness.
#[test]
fn dependencies_stay_in_their_modules() {
    let rules: [(&str, &[&str]); 15] = [
        ("libp2p::", &["node/src/net/"]),
        ("rocksdb::", &["node/src/store/"]),
        ("libp2p_stream::", &["node/src/net/"]),
        ("cbor4ii::", &["node/src/net/"]),
        ("openraft::", &["node/src/raft/"]),
        ("axum::", &["node/src/api/"]),
        ("tokio_tungstenite::", &["node/src/client.rs"]),
        ("bollard::", &["node/src/exec/docker.rs"]),
        ("libc::", &["node/src/host.rs"]),
        ("prometheus::", &["node/src/metrics.rs"]),
        ("rustls::", &["node/src/tls.rs"]),
        ("rcgen::", &["node/src/tls.rs"]),
        ("SystemTime::now", &["node/src/clock.rs"]),
        ("Instant::now", &["node/src/clock.rs"]),
        ("rand::", &["node/src/clock.rs"]),
    ];
    let mut problems = Vec::new();
    for (path, text) in sources() {
        if !path.starts_with("node/src") {
            continue;
        }
        for (needle, allowed) in rules {
            let ok = allowed.iter().any(|prefix| path.starts_with(prefix));
            if !ok && text.contains(needle) {
                problems.push(format!("{path}: uses {needle} outside {allowed:?}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "boundary problems:\n{}",
        problems.join("\n")
    );
}

/// `proto` is the wire boundary: no runtime, network, raft or storage dependencies.
#[test]
fn proto_depends_on_no_runtime() {
    let manifest = std::fs::read_to_string(root().join("proto/Cargo.toml")).expect("manifest");
    for banned in ["tokio", "libp2p", "openraft", "rocksdb", "axum"] {
        assert!(
            !manifest.contains(banned),
            "proto/Cargo.toml must not depend on {banned}"
        );
    }
}
