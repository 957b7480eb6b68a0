//! The node's sources of nondeterminism: wall-clock time and random ids. No other module reads
//! the clock or a random source, so tests can substitute both.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Time and entropy for a node.
pub trait Clock: Send + Sync + 'static {
    /// Wall-clock time in Unix nanoseconds.
    fn now_nanos(&self) -> i64;
    /// A fresh 128-bit request id as 32 hex chars.
    fn request_id(&self) -> String;
}

/// The real clock and the thread-local CSPRNG.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_nanos(&self) -> i64 {
        let elapsed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX)
    }

    fn request_id(&self) -> String {
        format!("{:032x}", rand::random::<u128>())
    }
}

/// A clock that moves only when told, with sequential request ids (tests).
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
    next_id: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(now_nanos: i64) -> ManualClock {
        ManualClock {
            now: Arc::new(AtomicI64::new(now_nanos)),
            next_id: Arc::default(),
        }
    }

    pub fn advance_nanos(&self, nanos: i64) {
        self.now.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    fn request_id(&self) -> String {
        format!("{:032x}", self.next_id.fetch_add(1, Ordering::SeqCst))
    }
}

/// Random bytes for new private keys (CLI `key new`, `colonymesh dev`).
pub fn key_entropy() -> [u8; 32] {
    rand::random()
}

/// Monotonic time for local timeouts and liveness (never replicated).
pub fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}
