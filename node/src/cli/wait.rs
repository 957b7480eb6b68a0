//! Waiting on the node: bounded polling with a short exponential backoff.

use std::future::Future;
use std::time::Duration;

/// First and longest pause between polls.
const FIRST_DELAY: Duration = Duration::from_millis(10);
const MAX_DELAY: Duration = Duration::from_millis(500);

/// Pauses that double from 10 ms up to 500 ms, back to 10 ms after `reset`.
#[derive(Debug)]
pub(crate) struct Backoff {
    delay: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { delay: FIRST_DELAY }
    }

    /// Sleeps for the current pause and doubles the next one.
    pub(crate) async fn pause(&mut self) {
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(MAX_DELAY);
    }

    pub(crate) fn reset(&mut self) {
        self.delay = FIRST_DELAY;
    }
}

/// Calls `poll` until it returns `Some`, for at most `limit`; the error says that `what`
/// did not happen in time.
pub(crate) async fn until<T, F, Fut>(limit: Duration, what: &str, mut poll: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let run = async {
        let mut backoff = Backoff::new();
        loop {
            if let Some(value) = poll().await? {
                return anyhow::Ok(value);
            }
            backoff.pause().await;
        }
    };
    match tokio::time::timeout(limit, run).await {
        Ok(result) => result,
        Err(_) => anyhow::bail!("{what} within {} s", limit.as_secs()),
    }
}

/// `--wait [SECONDS]` as a limit: `None` without the flag, an hour when given bare.
pub(crate) fn limit(flag: Option<Option<u64>>) -> Option<Duration> {
    flag.map(|seconds| Duration::from_secs(seconds.unwrap_or(3600)))
}
