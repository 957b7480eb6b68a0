//! Read-side queries over committed state for the API: lookups, bounded listings, counters.
//! Nothing here writes.

use super::get_json;
use super::keys::{self, Table};
use super::processes::read_count;
use super::tx::{Direction, StateRead, StoreError};
use proto::executor::executor_state;
use proto::process::process_state as ps;
use proto::{
    Attribute, Colony, Executor, Function, Location, Log, Process, ProcessGraph, Statistics, User,
};

/// Most processes one listing returns (ColonyOS caps `count` at 100).
pub const LIST_COUNT_MAX: usize = 100;
/// Index entries a filtered listing examines before returning what it has found.
pub const LIST_SCAN_MAX: usize = 10_000;
/// Most colonies, executors or users one listing returns.
pub const LIST_OBJECTS_MAX: usize = 10_000;

/// Every object under `prefix` of `table` (at most `LIST_OBJECTS_MAX`), in key order.
pub(crate) fn list_json<T: serde::de::DeserializeOwned, R: StateRead + ?Sized>(
    state: &R,
    table: Table,
    prefix: &[u8],
) -> Result<Vec<T>, StoreError> {
    let entries = state.scan(table, prefix, None, Direction::Forward, LIST_OBJECTS_MAX)?;
    entries.into_iter().map(|(_, v)| decode_json(&v)).collect()
}

pub fn colonies<R: StateRead + ?Sized>(state: &R) -> Result<Vec<Colony>, StoreError> {
    list_json(state, Table::Colonies, b"")
}

pub fn executors<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
) -> Result<Vec<Executor>, StoreError> {
    list_json(state, Table::Executors, &keys::prefix(&[colony.as_bytes()]))
}

pub fn executor<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    name: &str,
) -> Result<Option<Executor>, StoreError> {
    get_json(
        state,
        Table::Executors,
        &keys::join(&[colony.as_bytes(), name.as_bytes()]),
    )
}

pub fn users<R: StateRead + ?Sized>(state: &R, colony: &str) -> Result<Vec<User>, StoreError> {
    list_json(state, Table::Users, &keys::prefix(&[colony.as_bytes()]))
}

pub fn user<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    name: &str,
) -> Result<Option<User>, StoreError> {
    get_json(
        state,
        Table::Users,
        &keys::join(&[colony.as_bytes(), name.as_bytes()]),
    )
}

pub fn process<R: StateRead + ?Sized>(state: &R, id: &str) -> Result<Option<Process>, StoreError> {
    get_json(state, Table::Processes, id.as_bytes())
}

pub fn attribute<R: StateRead + ?Sized>(
    state: &R,
    id: &str,
) -> Result<Option<(Process, Attribute)>, StoreError> {
    let Some(processid) = state.get(Table::Attributes, id.as_bytes())? else {
        return Ok(None);
    };
    let processid = String::from_utf8_lossy(&processid).into_owned();
    let Some(p) = process(state, &processid)? else {
        return Err(StoreError(format!(
            "attribute {id} points at missing process {processid}"
        )));
    };
    let found = p.attributes.iter().find(|a| a.attributeid == id).cloned();
    Ok(found.map(|a| (p, a)))
}

/// True when a queued process exists that `executor` could be assigned (the same matching as
/// apply, over the same bounded scan). Lets an idle long-poll skip proposing an assign.
pub fn has_match<R: StateRead + ?Sized>(
    state: &R,
    executor: &Executor,
    cpu_millis: Option<i64>,
    mem_mib: Option<i64>,
) -> Result<bool, StoreError> {
    Ok(super::processes::find_match(state, executor, cpu_millis, mem_mib)?.is_some())
}

/// True when `executor` may run a process of `spec`: its colony, its type, and the spec's
/// conditions (names, location, cpu and memory against what the executor has free).
pub fn could_run(
    executor: &Executor,
    spec: &proto::FunctionSpec,
    cpu_millis: Option<i64>,
    mem_mib: Option<i64>,
) -> bool {
    spec.conditions.colonyname == executor.colonyname
        && spec.conditions.executortype == executor.executortype
        && super::processes::spec_matches(executor, spec, cpu_millis, mem_mib)
}

/// The response recorded for the client command with `request_id`, if it was applied (within
/// the deduplication window).
pub fn recorded_response<R: StateRead + ?Sized>(
    state: &R,
    request_id: &str,
) -> Result<Option<proto::command::Response>, StoreError> {
    get_json(state, Table::Requests, request_id.as_bytes())
}

/// A filter of `getprocessesmsg` / `getprocesshistmsg`.
#[derive(Clone, Debug, Default)]
pub struct ProcessFilter {
    pub executortype: String,
    pub label: String,
    pub initiator: String,
    pub executorid: String,
    /// Only processes submitted at or after this time (Unix ns).
    pub submitted_since_nanos: Option<i64>,
}

impl ProcessFilter {
    fn accepts(&self, p: &Process) -> bool {
        let c = &p.spec.conditions;
        // ColonyOS: the filters are exclusive; the first non-empty one wins, in the order of
        // its queries (`FindWaitingProcesses` and the like): type, initiator, label.
        let by_field = if !self.executortype.is_empty() {
            c.executortype == self.executortype
        } else if !self.initiator.is_empty() {
            p.initiatorname == self.initiator || p.initiatorid == self.initiator
        } else if !self.label.is_empty() {
            p.spec.label == self.label
        } else {
            true
        };
        let by_executor = self.executorid.is_empty() || p.assignedexecutorid == self.executorid;
        by_field && by_executor
    }
}

/// Up to `count` processes of `colony` in `state`, newest submission first.
pub fn processes<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    process_state: i32,
    count: usize,
    filter: &ProcessFilter,
) -> Result<Vec<Process>, StoreError> {
    let prefix = keys::by_state_prefix(colony, Some(process_state));
    let since = filter.submitted_since_nanos.unwrap_or(i64::MIN);
    let limit = count.min(LIST_COUNT_MAX);
    newest_first(state, Table::ByState, &prefix, since, limit, |key, _| {
        let p = super::processes::indexed_process(state, Table::ByState, key)?;
        Ok(filter.accepts(&p).then_some(p))
    })
}

/// Up to `count` objects picked from a time-ordered index, newest first, down to `since`
/// (Unix ns, the ordered integer right after `prefix`), examining at most `LIST_SCAN_MAX`
/// entries. `pick` turns an entry into an object, or skips it.
fn newest_first<T, R: StateRead + ?Sized>(
    state: &R,
    table: Table,
    prefix: &[u8],
    since: i64,
    count: usize,
    mut pick: impl FnMut(&[u8], &[u8]) -> Result<Option<T>, StoreError>,
) -> Result<Vec<T>, StoreError> {
    const PAGE: usize = 256;
    let mut found = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    let mut examined = 0;
    while found.len() < count && examined < LIST_SCAN_MAX {
        let page = state.scan(table, prefix, after.as_deref(), Direction::Reverse, PAGE)?;
        for (key, value) in &page {
            examined += 1;
            let at = keys::read_ordered_i64(key, prefix.len()).unwrap_or(i64::MIN);
            if at < since {
                return Ok(found);
            }
            if let Some(object) = pick(key, value)? {
                found.push(object);
                if found.len() == count {
                    break;
                }
            }
        }
        if page.len() < PAGE {
            break;
        }
        after = page.last().map(|(key, _)| key.clone());
    }
    Ok(found)
}

/// The workflow `id` with its UI layout, if it exists.
pub fn process_graph<R: StateRead + ?Sized>(
    state: &R,
    id: &str,
) -> Result<Option<ProcessGraph>, StoreError> {
    let Some(record) = super::workflows::load_record(state, id)? else {
        return Ok(None);
    };
    let mut members = Vec::with_capacity(record.graph.processids.len());
    for pid in &record.graph.processids {
        let p = process(state, pid)?
            .ok_or_else(|| StoreError(format!("workflow {id} names missing process {pid}")))?;
        members.push(p);
    }
    Ok(Some(record.graph.with_layout(&members)))
}

/// The processes of workflow `id` in `colony` (none if it is not there), in `state` or all
/// states (`NOTSET`), in submission order.
pub fn workflow_processes<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    id: &str,
    process_state: i32,
) -> Result<Vec<Process>, StoreError> {
    let Some(record) = super::workflows::load_record(state, id)? else {
        return Ok(Vec::new());
    };
    if record.graph.colonyname != colony {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for pid in &record.graph.processids {
        let p = process(state, pid)?
            .ok_or_else(|| StoreError(format!("workflow {id} names missing process {pid}")))?;
        if process_state == ps::NOTSET || p.state == process_state {
            found.push(p);
        }
    }
    Ok(found)
}

/// Up to `count` workflows of `colony` in `state`, newest submission first.
pub fn process_graphs<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    graph_state: i32,
    count: usize,
) -> Result<Vec<ProcessGraph>, StoreError> {
    let prefix = keys::by_state_prefix(colony, Some(graph_state));
    let count = count.min(LIST_COUNT_MAX);
    let entries = state.scan(
        Table::GraphsByState,
        &prefix,
        None,
        Direction::Reverse,
        count,
    )?;
    let mut found = Vec::with_capacity(entries.len());
    for (key, _) in entries {
        let id = keys::trailing_id(&key);
        let graph = process_graph(state, id)?
            .ok_or_else(|| StoreError(format!("listed workflow {id} missing")))?;
        found.push(graph);
    }
    Ok(found)
}

/// Process and executor counters for one colony.
pub fn colony_statistics<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
) -> Result<Statistics, StoreError> {
    let count = |s: i32| read_count(state, &keys::count(colony, s));
    let graph_count = |s: i32| read_count(state, &keys::graph_count(colony, s));
    let executors = executors(state, colony)?;
    let active = executors
        .iter()
        .filter(|e| e.state == executor_state::APPROVED)
        .count();
    let unregistered = executors
        .iter()
        .filter(|e| e.state == executor_state::UNREGISTERED)
        .count();
    Ok(Statistics {
        colonies: 1,
        executors: executors.len() as i64,
        activeexecutors: active as i64,
        unregisteredexecutors: unregistered as i64,
        waitingprocesses: count(ps::WAITING)?,
        runningprocesses: count(ps::RUNNING)?,
        successfulprocesses: count(ps::SUCCESS)?,
        failedprocesses: count(ps::FAILED)?,
        cancelledprocesses: count(ps::CANCELLED)?,
        waitingworkflows: graph_count(ps::WAITING)?,
        runningworkflows: graph_count(ps::RUNNING)?,
        successfulworkflows: graph_count(ps::SUCCESS)?,
        failedworkflows: graph_count(ps::FAILED)?,
        cancelledworkflows: graph_count(ps::CANCELLED)?,
    })
}

/// Counters summed over every colony.
pub fn statistics<R: StateRead + ?Sized>(state: &R) -> Result<Statistics, StoreError> {
    let mut total = Statistics::default();
    for colony in colonies(state)? {
        let s = colony_statistics(state, &colony.name)?;
        total.colonies += 1;
        total.executors += s.executors;
        total.activeexecutors += s.activeexecutors;
        total.unregisteredexecutors += s.unregisteredexecutors;
        total.waitingprocesses += s.waitingprocesses;
        total.runningprocesses += s.runningprocesses;
        total.successfulprocesses += s.successfulprocesses;
        total.failedprocesses += s.failedprocesses;
        total.cancelledprocesses += s.cancelledprocesses;
        total.waitingworkflows += s.waitingworkflows;
        total.runningworkflows += s.runningworkflows;
        total.successfulworkflows += s.successfulworkflows;
        total.failedworkflows += s.failedworkflows;
        total.cancelledworkflows += s.cancelledworkflows;
    }
    Ok(total)
}

/// The earliest pending deadline (Unix ns) of any kind, if any: process deadlines, crons and
/// generators coming due, and expiry of deduplication records.
pub fn next_deadline<R: StateRead + ?Sized>(state: &R) -> Result<Option<i64>, StoreError> {
    let mut earliest: Option<i64> = None;
    let first = state.scan(Table::RequestsByTime, b"", None, Direction::Forward, 1)?;
    if let Some((key, _)) = first.first() {
        let at = keys::read_ordered_i64(key, 0)
            .ok_or_else(|| StoreError(format!("corrupt request time key {key:?}")))?;
        earliest = Some(at.saturating_add(super::DEDUP_WINDOW_NANOS));
    }
    for table in [Table::CronsDue, Table::GeneratorsDue] {
        if let Some((key, _)) = state.scan(table, b"", None, Direction::Forward, 1)?.first() {
            let at = keys::read_ordered_i64(key, 0)
                .ok_or_else(|| StoreError(format!("corrupt due key {key:?}")))?;
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
    }
    for kind in [keys::DeadlineKind::Wait, keys::DeadlineKind::Exec] {
        let prefix = keys::prefix(&[&[kind as u8]]);
        let first = state.scan(Table::Deadlines, &prefix, None, Direction::Forward, 1)?;
        if let Some((key, _)) = first.first() {
            let at = keys::read_ordered_i64(key, prefix.len())
                .ok_or_else(|| StoreError(format!("corrupt deadline key {key:?}")))?;
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
    }
    Ok(earliest)
}

/// True when the mesh revoked the certificate of `peer_id`.
pub fn is_revoked<R: StateRead + ?Sized>(state: &R, peer_id: &str) -> Result<bool, StoreError> {
    Ok(state.get(Table::Meta, &keys::revoked(peer_id))?.is_some())
}

/// Functions registered in `colony`, by one executor or (`executorname` empty) by all.
pub fn functions<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    executorname: &str,
) -> Result<Vec<Function>, StoreError> {
    let prefix = match executorname {
        "" => keys::prefix(&[colony.as_bytes()]),
        name => keys::prefix(&[colony.as_bytes(), name.as_bytes()]),
    };
    list_json(state, Table::Functions, &prefix)
}

/// The function `id` (whatever colony it is in).
pub fn function<R: StateRead + ?Sized>(
    state: &R,
    id: &str,
) -> Result<Option<Function>, StoreError> {
    match state.get(Table::FunctionIds, id.as_bytes())? {
        Some(key) => get_json(state, Table::Functions, &key),
        None => Ok(None),
    }
}

/// Most log lines one read returns (ColonyOS caps `count` at 500).
pub const LOG_COUNT_MAX: usize = 500;
/// Most days a log search looks back.
pub const LOG_SEARCH_DAYS_MAX: i64 = 30;

/// Which log lines to read: of a process, or of an executor of a colony.
pub enum LogSource<'a> {
    Process(&'a str),
    Executor { colony: &'a str, name: &'a str },
}

/// Up to `count` log lines of `source`, oldest first: the first ones after `since` (Unix ns,
/// 0 = from the start), or with `latest` the last ones.
pub fn logs<R: StateRead + ?Sized>(
    state: &R,
    source: LogSource<'_>,
    count: usize,
    since: i64,
    latest: bool,
) -> Result<Vec<Log>, StoreError> {
    let (table, prefix) = match source {
        LogSource::Process(id) => (Table::Logs, keys::prefix(&[id.as_bytes()])),
        LogSource::Executor { colony, name } => (
            Table::ExecutorLogs,
            keys::prefix(&[colony.as_bytes(), name.as_bytes()]),
        ),
    };
    let count = count.min(LOG_COUNT_MAX);
    let entries = if latest {
        let mut newest = state.scan(table, &prefix, None, Direction::Reverse, count)?;
        newest.reverse();
        newest
    } else {
        // Keys are prefix, time, \0, request id: everything at `since` sorts below
        // prefix + time + \x01.
        let mut after = prefix.clone();
        after.extend_from_slice(&keys::ordered_i64(since));
        after.push(1);
        let after = (since > 0).then_some(after);
        state.scan(table, &prefix, after.as_deref(), Direction::Forward, count)?
    };
    entries.iter().map(|(_, v)| decode_json(v)).collect()
}

/// Up to `count` log lines of `colony` from the last `days` days containing `text`, newest
/// first, examining at most `LIST_SCAN_MAX` lines.
pub fn search_logs<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    text: &str,
    since_nanos: i64,
    count: usize,
) -> Result<Vec<Log>, StoreError> {
    let prefix = keys::prefix(&[colony.as_bytes()]);
    newest_first(
        state,
        Table::LogsByTime,
        &prefix,
        since_nanos,
        count,
        |_, value| {
            let log: Log = decode_json(value)?;
            Ok(log.message.contains(text).then_some(log))
        },
    )
}

pub fn locations<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
) -> Result<Vec<Location>, StoreError> {
    list_json(state, Table::Locations, &keys::prefix(&[colony.as_bytes()]))
}

pub fn location<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    name: &str,
) -> Result<Option<Location>, StoreError> {
    let key = keys::join(&[colony.as_bytes(), name.as_bytes()]);
    get_json(state, Table::Locations, &key)
}

fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError(format!("corrupt value: {e}")))
}
