//! The replicated state's tables and key layouts: one place that says how every object and
//! index is keyed, so the store and the apply logic cannot disagree.
//!
//! Keys are byte strings; `\0` separates name parts (names never contain `\0`, checked on
//! input), integers are big-endian with the sign bit flipped so byte order is numeric order.

/// A table of the state machine. The store maps each to one RocksDB column family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Singletons and counters: server id, per-colony per-state process counts.
    Meta,
    /// colony name -> Colony.
    Colonies,
    /// colony \0 executor name -> Executor.
    Executors,
    /// executor id -> colony \0 executor name.
    ExecutorIds,
    /// colony \0 user name -> User.
    Users,
    /// user id -> colony \0 user name.
    UserIds,
    /// process id -> Process.
    Processes,
    /// colony \0 executor type \0 prioritytime \0 process id -> "" (assignable processes).
    Queue,
    /// colony \0 state \0 submission time \0 process id -> "" (listing and history).
    ByState,
    /// kind \0 deadline \0 process id -> "" (maxwaittime / maxexectime expiry).
    Deadlines,
    /// executor id \0 process id -> "" (processes running on an executor).
    Assigned,
    /// attribute id -> process id.
    Attributes,
    /// request id -> the response of a client command already applied (deduplication).
    Requests,
    /// command time \0 request id -> "" (expiry of `Requests`).
    RequestsByTime,
    /// process graph id -> workflows::GraphRecord.
    Graphs,
    /// colony \0 state \0 submission time \0 graph id -> "" (listing workflows).
    GraphsByState,
    /// colony \0 executor name \0 function name -> Function.
    Functions,
    /// function id -> colony \0 executor name \0 function name.
    FunctionIds,
    /// process id \0 time \0 request id -> Log (a process's log).
    Logs,
    /// colony \0 executor name \0 time \0 request id -> Log (an executor's own log).
    ExecutorLogs,
    /// colony \0 time \0 request id -> Log (every log line of a colony, for search).
    LogsByTime,
    /// colony \0 location name -> Location.
    Locations,
    /// cron id -> Cron.
    Crons,
    /// colony \0 cron id -> "" (listing).
    CronsByColony,
    /// next run time \0 cron id -> "" (crons the tick starts).
    CronsDue,
    /// generator id -> Generator.
    Generators,
    /// colony \0 generator name -> generator id (listing, resolving by name).
    GeneratorsByName,
    /// generator id \0 pack time \0 request id -> argument (packed, not yet used).
    GeneratorArgs,
    /// timeout time \0 generator id -> "" (generators the tick starts with what is packed).
    GeneratorsDue,
    /// process id \0 channel name \0 index -> MsgEntry.
    Channels,
    /// colony \0 label \0 file name \0 revision -> File.
    Files,
    /// file id -> its `Files` key.
    FileIds,
    /// colony \0 label -> number of file names under it.
    FileLabels,
    /// colony \0 snapshot id -> Snapshot.
    Snapshots,
    /// colony \0 snapshot name -> snapshot id.
    SnapshotNames,
    /// colony \0 definition name -> BlueprintDefinition.
    BlueprintDefinitions,
    /// colony \0 blueprint name -> Blueprint.
    Blueprints,
    /// blueprint id -> its `Blueprints` key.
    BlueprintIds,
    /// blueprint id \0 time \0 history id -> BlueprintHistory.
    BlueprintHistory,
}

impl Table {
    /// Every table, in a fixed order (snapshots are written in this order).
    pub const ALL: [Table; 39] = [
        Table::Meta,
        Table::Colonies,
        Table::Executors,
        Table::ExecutorIds,
        Table::Users,
        Table::UserIds,
        Table::Processes,
        Table::Queue,
        Table::ByState,
        Table::Deadlines,
        Table::Assigned,
        Table::Attributes,
        Table::Requests,
        Table::RequestsByTime,
        Table::Graphs,
        Table::GraphsByState,
        Table::Functions,
        Table::FunctionIds,
        Table::Logs,
        Table::ExecutorLogs,
        Table::LogsByTime,
        Table::Locations,
        Table::Crons,
        Table::CronsByColony,
        Table::CronsDue,
        Table::Generators,
        Table::GeneratorsByName,
        Table::GeneratorArgs,
        Table::GeneratorsDue,
        Table::Channels,
        Table::Files,
        Table::FileIds,
        Table::FileLabels,
        Table::Snapshots,
        Table::SnapshotNames,
        Table::BlueprintDefinitions,
        Table::Blueprints,
        Table::BlueprintIds,
        Table::BlueprintHistory,
    ];

    /// Stable name, used as the column family name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "sm_meta",
            Table::Colonies => "sm_colonies",
            Table::Executors => "sm_executors",
            Table::ExecutorIds => "sm_executor_ids",
            Table::Users => "sm_users",
            Table::UserIds => "sm_user_ids",
            Table::Processes => "sm_processes",
            Table::Queue => "sm_queue",
            Table::ByState => "sm_by_state",
            Table::Deadlines => "sm_deadlines",
            Table::Assigned => "sm_assigned",
            Table::Attributes => "sm_attributes",
            Table::Requests => "sm_requests",
            Table::RequestsByTime => "sm_requests_by_time",
            Table::Graphs => "sm_graphs",
            Table::GraphsByState => "sm_graphs_by_state",
            Table::Functions => "sm_functions",
            Table::FunctionIds => "sm_function_ids",
            Table::Logs => "sm_logs",
            Table::ExecutorLogs => "sm_executor_logs",
            Table::LogsByTime => "sm_logs_by_time",
            Table::Locations => "sm_locations",
            Table::Crons => "sm_crons",
            Table::CronsByColony => "sm_crons_by_colony",
            Table::CronsDue => "sm_crons_due",
            Table::Generators => "sm_generators",
            Table::GeneratorsByName => "sm_generators_by_name",
            Table::GeneratorArgs => "sm_generator_args",
            Table::GeneratorsDue => "sm_generators_due",
            Table::Channels => "sm_channels",
            Table::Files => "sm_files",
            Table::FileIds => "sm_file_ids",
            Table::FileLabels => "sm_file_labels",
            Table::Snapshots => "sm_snapshots",
            Table::SnapshotNames => "sm_snapshot_names",
            Table::BlueprintDefinitions => "sm_blueprint_definitions",
            Table::Blueprints => "sm_blueprints",
            Table::BlueprintIds => "sm_blueprint_ids",
            Table::BlueprintHistory => "sm_blueprint_history",
        }
    }
}

/// Deadline kinds in `Table::Deadlines`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadlineKind {
    Wait = 0,
    Exec = 1,
}

pub(crate) const SERVER_ID: &[u8] = b"server_id";

/// Order-preserving encoding of a signed integer.
pub(crate) fn ordered_i64(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

/// Joins parts with `\0`.
pub(crate) fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(0);
        }
        key.extend_from_slice(part);
    }
    key
}

/// `parts` joined, plus a trailing `\0`: the prefix of every key under them.
pub(crate) fn prefix(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = join(parts);
    key.push(0);
    key
}

pub(crate) fn queue(colony: &str, executortype: &str, prioritytime: i64, id: &str) -> Vec<u8> {
    join(&[
        colony.as_bytes(),
        executortype.as_bytes(),
        &ordered_i64(prioritytime),
        id.as_bytes(),
    ])
}

/// Key of `ByState` (processes) and `GraphsByState` (workflows).
pub(crate) fn by_state(colony: &str, state: i32, submission_nanos: i64, id: &str) -> Vec<u8> {
    join(&[
        colony.as_bytes(),
        &[state as u8],
        &ordered_i64(submission_nanos),
        id.as_bytes(),
    ])
}

/// The prefix of the `by_state` keys of `colony` in `state`, or in every state.
pub(crate) fn by_state_prefix(colony: &str, state: Option<i32>) -> Vec<u8> {
    match state {
        Some(state) => prefix(&[colony.as_bytes(), &[state as u8]]),
        None => prefix(&[colony.as_bytes()]),
    }
}

pub(crate) fn deadline(kind: DeadlineKind, at_nanos: i64, id: &str) -> Vec<u8> {
    join(&[&[kind as u8], &ordered_i64(at_nanos), id.as_bytes()])
}

pub(crate) fn request_time(at_nanos: i64, request_id: &str) -> Vec<u8> {
    join(&[&ordered_i64(at_nanos), request_id.as_bytes()])
}

pub(crate) fn revoked(peer_id: &str) -> Vec<u8> {
    join(&[b"revoked", peer_id.as_bytes()])
}

pub(crate) fn count(colony: &str, state: i32) -> Vec<u8> {
    join(&[b"count", colony.as_bytes(), &[state as u8]])
}

/// Present while assignments in `colony` are paused.
pub(crate) fn paused(colony: &str) -> Vec<u8> {
    join(&[b"paused", colony.as_bytes()])
}

/// Counter of the workflows of `colony` in `state`.
pub(crate) fn graph_count(colony: &str, state: i32) -> Vec<u8> {
    join(&[b"graph_count", colony.as_bytes(), &[state as u8]])
}

/// The process id at the end of an index key (every index key ends with `\0` + id).
pub(crate) fn trailing_id(key: &[u8]) -> &str {
    let start = key.iter().rposition(|b| *b == 0).map_or(0, |i| i + 1);
    std::str::from_utf8(&key[start..]).unwrap_or_default()
}

/// The integer encoded by `ordered_i64` at `key[at..at + 8]`.
pub(crate) fn read_ordered_i64(key: &[u8], at: usize) -> Option<i64> {
    let bytes: [u8; 8] = key.get(at..at + 8)?.try_into().ok()?;
    Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_encoding_sorts_numerically() {
        let values = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        let encoded: Vec<_> = values.iter().map(|v| ordered_i64(*v)).collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]));
        let key = deadline(DeadlineKind::Exec, -42, "p");
        assert_eq!(read_ordered_i64(&key, 2), Some(-42));
        assert_eq!(trailing_id(&key), "p");
    }
}
