//! One assigned process as a backend sees it: its deadline, its work directory and the log
//! sink that streams its output lines into the process log while it runs; and the outcome a
//! backend returns.

use crate::client::Client;
use proto::msgs::AddLogMsg;
use proto::{PrivateKey, Request};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

/// Lines buffered between a running process and the log writer; a full buffer makes the
/// reader wait (and so the process, once its pipe fills): output is never dropped.
const LOG_QUEUE_LINES: usize = 256;
/// Longest line kept in the log; the rest of a longer line is cut with a marker.
pub(crate) const LOG_LINE_BYTES_MAX: usize = 16 * 1024;
/// One `addlogmsg` carries at most this much (the state machine accepts 64 KiB).
const LOG_BATCH_BYTES_MAX: usize = 32 * 1024;
/// How long lines wait to be batched before they are sent.
const LOG_BATCH_WAIT: Duration = Duration::from_millis(200);

/// How a backend's run ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Close successful with this output.
    Success(Vec<Value>),
    /// Close failed with these errors (first the reason, then details such as stderr's tail).
    Failure(Vec<String>),
}

impl Outcome {
    pub(crate) fn failure(reason: impl Into<String>) -> Outcome {
        Outcome::Failure(vec![reason.into()])
    }
}

/// What a backend gets to run one process.
pub(crate) struct Job {
    pub(crate) process: proto::Process,
    /// How long the process may run (`maxexectime`, or the executor's default limit).
    pub(crate) timeout: Duration,
    /// An empty directory for this process, removed after the run (the shell executor's
    /// working directory).
    pub(crate) work_dir: PathBuf,
    /// Streams lines into the process log.
    pub(crate) log: LogSink,
}

/// Sends lines to the process log through the node API, batched, in order. Cheap to clone.
#[derive(Clone)]
pub(crate) struct LogSink {
    lines: mpsc::Sender<String>,
}

/// The task writing a `LogSink`'s lines; `finish` waits until every line is written.
pub(crate) struct LogWriter {
    task: JoinHandle<()>,
}

impl LogSink {
    /// A sink writing to `process_id`'s log as the executor holding `key`.
    pub(crate) fn start(
        client: Client,
        key: PrivateKey,
        process_id: String,
    ) -> (LogSink, LogWriter) {
        let (lines, receiver) = mpsc::channel(LOG_QUEUE_LINES);
        let task = tokio::spawn(write_log(client, key, process_id, receiver).in_current_span());
        (LogSink { lines }, LogWriter { task })
    }

    /// Queues one line (without its newline), waiting while the queue is full.
    pub(crate) async fn line(&self, line: &str) {
        let mut line = line.trim_end_matches(['\n', '\r']).to_string();
        if line.len() > LOG_LINE_BYTES_MAX {
            let mut cut = LOG_LINE_BYTES_MAX;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" [line cut]");
        }
        // The writer only stops once every sink is dropped.
        let _ = self.lines.send(line).await;
    }
}

impl LogWriter {
    /// Waits until the lines of every (dropped) sink are written.
    pub(crate) async fn finish(self) {
        if let Err(error) = self.task.await {
            tracing::warn!("log writer failed: {error}");
        }
    }
}

async fn write_log(
    client: Client,
    key: PrivateKey,
    processid: String,
    mut lines: mpsc::Receiver<String>,
) {
    let mut batch = String::new();
    loop {
        let next = if batch.is_empty() {
            lines.recv().await
        } else {
            match tokio::time::timeout(LOG_BATCH_WAIT, lines.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    send(&client, &key, &processid, &mut batch).await;
                    continue;
                }
            }
        };
        let Some(line) = next else { break };
        if batch.len() + line.len() + 1 > LOG_BATCH_BYTES_MAX {
            send(&client, &key, &processid, &mut batch).await;
        }
        batch.push_str(&line);
        batch.push('\n');
    }
    if !batch.is_empty() {
        send(&client, &key, &processid, &mut batch).await;
    }
}

async fn send(client: &Client, key: &PrivateKey, processid: &str, batch: &mut String) {
    let request = Request::AddLog(AddLogMsg {
        processid: processid.to_string(),
        message: std::mem::take(batch),
    });
    // A log line that cannot be written (node stopping, process already closed by a
    // deadline) must not fail the run itself.
    if let Err(error) = client.call::<Value>(&request, key).await {
        tracing::debug!(%processid, "log lines not written: {error}");
    }
}
