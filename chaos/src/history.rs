//! The history of a chaos run: one `Event` per client request with its outcome, appended by
//! the workload's tasks and written as JSON lines for the checker and for post-mortems.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Submit a process tagged with a unique `tag`.
    Submit,
    /// Long-poll assign by `executor`.
    Assign,
    /// Close (successful) by the executor the process was assigned to.
    Close,
    /// Close by an executor the process was *not* assigned to: must be refused.
    Rogue,
    /// Read one process.
    Read,
}

/// How the request ended, Jepsen style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Acknowledged: it happened.
    Ok,
    /// Refused with a definite answer: it did not happen.
    Fail,
    /// Unknown (timeout, lost connection, node unavailable): it may or may not have happened.
    Info,
}

/// One request and its outcome. Times are milliseconds since the run started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub client: String,
    /// The node the request went to.
    pub node: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub kind: Kind,
    pub outcome: Outcome,
    /// Submit: the process's unique tag (its `args[0]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processid: Option<String>,
    /// Assign, close, rogue: the acting executor's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// Read: what was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Event {
    /// An event of `kind` by `client` at `node`, with no details yet.
    pub fn new(kind: Kind, outcome: Outcome, client: &str, node: &str) -> Event {
        Event {
            client: client.to_string(),
            node: node.to_string(),
            start_ms: 0,
            end_ms: 0,
            kind,
            outcome,
            tag: None,
            processid: None,
            executor: None,
            seen: None,
            error: None,
        }
    }
}

/// A process as one read (or the final state) saw it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub state: i32,
    /// Name of the executor it is assigned to, empty when none.
    pub assigned: String,
    pub output: Vec<serde_json::Value>,
    /// The tag it was submitted with.
    pub tag: String,
}

/// The shared, append-only history of one run.
#[derive(Clone)]
pub struct History {
    started: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Default for History {
    fn default() -> History {
        History::new()
    }
}

impl History {
    /// An empty history; its clock starts now.
    pub fn new() -> History {
        History {
            started: Instant::now(),
            events: Arc::default(),
        }
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn record(&self, event: Event) {
        self.events.lock().expect("history lock").push(event);
    }

    /// A copy of every event so far, in completion order.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("history lock").clone()
    }
}

/// Writes `events` as JSON lines to `path`.
pub fn write_jsonl(path: &std::path::Path, events: &[Event]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for event in events {
        serde_json::to_writer(&mut out, event)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
