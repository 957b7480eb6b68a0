//! The replicated state machine's logic, sans IO: `apply(state, command)` decides everything a
//! command changes and returns the writes, the reply and the local events to publish.
//!
//! ```text
//!   raft (log entry) --Command--> apply(&dyn StateRead, &Command)
//!                                   |-- Writes   --> store (one atomic batch with last_applied)
//!                                   |-- Response --> the proposer's waiting API handler
//!                                   '-- Events   --> sched::Waiters (wake one long-poller)
//! ```
//!
//! Apply reads no clock and no randomness: time is `Command::now_nanos`, new ids derive from
//! `Command::request_id`. Given the same state and command, every replica writes the same bytes.

pub mod auth;
pub mod blueprints;
pub mod channels;
pub mod colonies;
pub mod cronexpr;
pub mod crons;
mod executors;
pub mod files;
mod functions;
pub mod generators;
mod housekeeping;
pub mod keys;
mod locations;
mod logs;
mod processes;
pub mod query;
mod tick;
pub mod tx;
pub mod validate;
pub mod workflows;

#[cfg(test)]
mod tests;

use keys::Table;
use proto::command::{Command, Op, Reply, Response};
use proto::ApiError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tx::{StateRead, StoreError, Tx, Writes};

/// Something that happened in a committed command that local waiters may care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A process became assignable for executors of this colony and type.
    Enqueued {
        colonyname: String,
        executortype: String,
    },
    /// Assignments in this colony were resumed: every waiting assign should look again.
    Resumed { colonyname: String },
    /// Entry `index` was appended to a process's channel.
    ChannelAppended {
        processid: String,
        name: String,
        index: i64,
    },
    /// The running processes of these executors were released (their node went silent): a
    /// long-poll of theirs still parked somewhere must not be handed work.
    ExecutorsReleased { executor_ids: Vec<String> },
    /// A process was created or changed state (realtime subscriptions follow these).
    ProcessChanged {
        processid: String,
        colonyname: String,
        executortype: String,
        state: i32,
    },
}

/// The outcome of applying one command.
#[derive(Debug)]
pub struct Applied {
    pub writes: Writes,
    pub response: Response,
    pub events: Vec<Event>,
}

/// Applies `command` to `state`. A `StoreError` means the store is broken (fatal); refusals
/// are part of the `Response`, and a refused command writes nothing.
///
/// A client command (non-empty caller) whose request id was applied before, within
/// `DEDUP_WINDOW_NANOS`, is not applied again: its recorded response is returned. This lets
/// a proposer retry a write whose outcome it did not learn, without applying it twice.
pub fn apply<R: StateRead + ?Sized>(state: &R, command: &Command) -> Result<Applied, StoreError> {
    let client = !command.caller_id.is_empty();
    let id = command.request_id.as_bytes();
    if client {
        if let Some(response) = get_json::<Response, R>(state, Table::Requests, id)? {
            return Ok(Applied {
                writes: Writes::new(),
                response,
                events: Vec::new(),
            });
        }
    }
    let mut ctx = Ctx {
        tx: Tx::new(state),
        command,
        events: Vec::new(),
        graph_changes: Vec::new(),
    };
    let mut response = Response(dispatch(&mut ctx, &command.op)?);
    if response.0.is_ok() {
        // Workflow consequences of the command's process changes, and of those, until none
        // is left (each round only fails or releases processes that were waiting).
        for _ in 0..=workflows::WORKFLOW_PROCESSES_MAX {
            let changes = std::mem::take(&mut ctx.graph_changes);
            if changes.is_empty() {
                break;
            }
            workflows::settle(&mut ctx, changes)?;
        }
        if !ctx.graph_changes.is_empty() {
            return Err(StoreError("workflow changes did not settle".into()));
        }
        if let Ok(Reply::ProcessGraph(graph)) = &mut response.0 {
            // The reply shows the workflow as settled.
            if let Some(record) = workflows::load_record(&ctx.tx, &graph.processgraphid)? {
                graph.state = record.graph.state;
            }
        }
    }
    if response.0.is_err() {
        return Ok(Applied {
            writes: Writes::new(),
            response,
            events: Vec::new(),
        });
    }
    // `AssignFor` is deduplicated by its long-poll key (a process it assigns is recorded
    // there); a record by request id as well would only repeat it.
    if client && !matches!(command.op, Op::AssignFor { .. }) {
        ctx.put_json(Table::Requests, id.to_vec(), &response);
        let by_time = keys::request_time(command.now_nanos, &command.request_id);
        ctx.tx.put(Table::RequestsByTime, by_time, Vec::new());
    }
    Ok(Applied {
        writes: ctx.tx.into_writes(),
        response,
        events: ctx.events,
    })
}

/// How long applied client requests are remembered for deduplication (command time).
pub const DEDUP_WINDOW_NANOS: i64 = 10 * 60 * 1_000_000_000;

/// The newest kinds of command this build applies; gossiped in `NodeStatus::apply_level`. A
/// leader proposes a command of a level only once every member reports at least that level,
/// so a mesh of mixed builds (a rolling upgrade) never logs what some member cannot apply.
/// - 0: every command of the first release.
/// - 1: `Op::AssignFor` (assign long-polls parked on the leader).
/// - 2: `Op::AddProcessLog` (a process's log line also in its executor's log).
pub const APPLY_LEVEL: u32 = 2;
/// The level that brought `Op::AssignFor`.
pub const LEVEL_ASSIGN_FOR: u32 = 1;
/// The level that brought `Op::AddProcessLog`.
pub const LEVEL_LOGS_BY_EXECUTOR: u32 = 2;
const _: () = assert!(LEVEL_ASSIGN_FOR <= APPLY_LEVEL && LEVEL_LOGS_BY_EXECUTOR <= APPLY_LEVEL);

/// A refusal (`Err(ApiError)`) inside a successful store interaction.
pub(crate) type Outcome<T> = Result<Result<T, ApiError>, StoreError>;

fn dispatch<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, op: &Op) -> Outcome<Reply> {
    match op {
        Op::InitServer { server_id } => colonies::init_server(ctx, server_id),
        Op::AddColony(colony) => colonies::add_colony(ctx, colony),
        Op::RemoveColony { colonyname } => colonies::remove_colony(ctx, colonyname),
        Op::AddUser(user) => colonies::add_user(ctx, user),
        Op::RemoveUser { colonyname, name } => colonies::remove_user(ctx, colonyname, name),
        Op::AddExecutor(executor) => executors::add(ctx, executor),
        Op::SetExecutorApproval {
            colonyname,
            executorname,
            approved,
        } => executors::set_approval(ctx, colonyname, executorname, *approved),
        Op::RemoveExecutor {
            colonyname,
            executorname,
        } => executors::remove(ctx, colonyname, executorname),
        Op::Submit(spec) => processes::submit(ctx, spec),
        Op::Assign {
            colonyname,
            cpu_millis,
            mem_mib,
        } => processes::assign(ctx, colonyname, *cpu_millis, *mem_mib),
        Op::AssignFor {
            key,
            colonyname,
            cpu_millis,
            mem_mib,
        } => processes::assign_for(ctx, key, colonyname, *cpu_millis, *mem_mib),
        Op::CloseSuccessful { processid, out } => processes::close_successful(ctx, processid, out),
        Op::CloseFailed { processid, errors } => processes::close_failed(ctx, processid, errors),
        Op::SetOutput { processid, out } => processes::set_output(ctx, processid, out),
        Op::CancelProcess { processid } => processes::cancel(ctx, processid),
        Op::RemoveProcess { processid } => processes::remove(ctx, processid),
        Op::RemoveAllProcesses { colonyname, state } => {
            processes::remove_all(ctx, colonyname, *state)
        }
        Op::AddAttribute(attribute) => processes::add_attribute(ctx, attribute),
        Op::SubmitWorkflow(workflow) => workflows::submit(ctx, workflow),
        Op::RemoveProcessGraph { processgraphid } => workflows::remove(ctx, processgraphid),
        Op::RemoveAllProcessGraphs { colonyname, state } => {
            workflows::remove_all(ctx, colonyname, *state)
        }
        Op::CancelProcessGraph { processgraphid } => workflows::cancel(ctx, processgraphid),
        Op::AddChild {
            processgraphid,
            parentprocessid,
            childprocessid,
            spec,
            insert,
        } => workflows::add_child(
            ctx,
            processgraphid,
            parentprocessid,
            childprocessid,
            spec,
            *insert,
        ),
        Op::AddFunction(function) => functions::add(ctx, function),
        Op::RemoveFunction { functionid } => functions::remove(ctx, functionid),
        Op::AddLog { processid, message } => logs::add(ctx, processid, message, false),
        Op::AddProcessLog { processid, message } => logs::add(ctx, processid, message, true),
        Op::AddExecutorLog {
            colonyname,
            executorname,
            message,
        } => logs::add_executor_log(ctx, colonyname, executorname, message),
        Op::AddLocation(location) => locations::add(ctx, location),
        Op::RemoveLocation { colonyname, name } => locations::remove(ctx, colonyname, name),
        Op::SetPaused { colonyname, paused } => colonies::set_paused(ctx, colonyname, *paused),
        Op::UpdateExecutor {
            colonyname,
            executorname,
            capabilities,
        } => executors::update_capabilities(ctx, colonyname, executorname, capabilities),
        Op::ReportAllocation {
            colonyname,
            executorname,
            allocations,
        } => executors::report_allocations(ctx, colonyname, executorname, allocations),
        Op::ChangeUserId { colonyname, userid } => {
            colonies::change_user_id(ctx, colonyname, userid)
        }
        Op::ChangeExecutorId {
            colonyname,
            executorid,
        } => executors::change_id(ctx, colonyname, executorid),
        Op::ChangeColonyId {
            colonyname,
            colonyid,
        } => colonies::change_colony_id(ctx, colonyname, colonyid),
        Op::ChangeServerId { serverid } => colonies::change_server_id(ctx, serverid),
        Op::AddCron(cron) => crons::add(ctx, cron),
        Op::RunCron { cronid } => crons::run(ctx, cronid),
        Op::RemoveCron { cronid } => crons::remove(ctx, cronid),
        Op::AddGenerator(generator) => generators::add(ctx, generator),
        Op::PackGenerator { generatorid, arg } => generators::pack(ctx, generatorid, arg),
        Op::RemoveGenerator { generatorid } => generators::remove(ctx, generatorid),
        Op::ChannelAppend {
            processid,
            name,
            sequence,
            inreplyto,
            payload,
            payloadtype,
        } => {
            let entry = channels::entry_of(*sequence, *inreplyto, payload.clone(), payloadtype);
            channels::append(ctx, processid, name, entry)
        }
        Op::AddFile(file) => files::add(ctx, file),
        Op::RemoveFile {
            colonyname,
            fileid,
            label,
            name,
        } => files::remove(ctx, colonyname, fileid, label, name),
        Op::CreateSnapshot {
            colonyname,
            label,
            name,
        } => files::create_snapshot(ctx, colonyname, label, name),
        Op::RemoveSnapshot {
            colonyname,
            snapshotid,
            name,
        } => files::remove_snapshot(ctx, colonyname, snapshotid, name),
        Op::RemoveAllSnapshots { colonyname } => files::remove_all_snapshots(ctx, colonyname),
        Op::AddBlueprintDefinition(definition) => blueprints::add_definition(ctx, definition),
        Op::RemoveBlueprintDefinition { colonyname, name } => {
            blueprints::remove_definition(ctx, colonyname, name)
        }
        Op::AddBlueprint(blueprint) => blueprints::add(ctx, blueprint),
        Op::UpdateBlueprint { blueprint, force } => blueprints::update(ctx, blueprint, *force),
        Op::RemoveBlueprint { colonyname, name } => blueprints::remove(ctx, colonyname, name),
        Op::UpdateBlueprintStatus {
            colonyname,
            name,
            status,
        } => blueprints::update_status(ctx, colonyname, name, status),
        Op::ReconcileBlueprint {
            colonyname,
            name,
            force,
        } => blueprints::reconcile(ctx, colonyname, name, *force),
        Op::Housekeep {
            retention_seconds,
            stale_executor_seconds,
        } => housekeeping::housekeep(ctx, *retention_seconds, *stale_executor_seconds),
        Op::ReleaseExecutors { executor_ids } => housekeeping::release_executors(ctx, executor_ids),
        Op::Tick => tick::tick(ctx),
        Op::RevokeNode { peer_id } => revoke(ctx, peer_id),
    }
}

fn revoke<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, peer_id: &str) -> Outcome<Reply> {
    if !ctx.caller().is_empty() {
        return Ok(Err(ApiError::forbidden(
            "only the mesh itself revokes nodes",
        )));
    }
    ctx.tx.put(Table::Meta, keys::revoked(peer_id), Vec::new());
    Ok(Ok(Reply::Done))
}

/// The context of one apply: the overlay transaction, the command and the collected events.
pub(crate) struct Ctx<'a, R: StateRead + ?Sized> {
    pub(crate) tx: Tx<'a, R>,
    pub(crate) command: &'a Command,
    pub(crate) events: Vec<Event>,
    /// State changes of workflow members, for `workflows::settle`.
    pub(crate) graph_changes: Vec<workflows::GraphChange>,
}

impl<R: StateRead + ?Sized> Ctx<'_, R> {
    pub(crate) fn now(&self) -> i64 {
        self.command.now_nanos
    }

    pub(crate) fn caller(&self) -> &str {
        &self.command.caller_id
    }

    pub(crate) fn put_json<T: Serialize>(&mut self, table: Table, key: Vec<u8>, value: &T) {
        let bytes = serde_json::to_vec(value).expect("state objects always serialize");
        self.tx.put(table, key, bytes);
    }
}

/// Reads and decodes a JSON value. A value that does not decode means corruption: fatal.
pub(crate) fn get_json<T: DeserializeOwned, R: StateRead + ?Sized>(
    state: &R,
    table: Table,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    match state.get(table, key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            StoreError(format!(
                "corrupt value in {} at {:?}: {e}",
                table.name(),
                key
            ))
        }),
    }
}

/// Returns early with the refusal if `$result` is a refusal.
macro_rules! refuse_unless {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(refusal) => return Ok(Err(refusal)),
        }
    };
}
pub(crate) use refuse_unless;
