//! Apply logic for processes: submit, assign, close, cancel, remove, attributes, and the
//! bookkeeping that keeps every index consistent with the process record.
//!
//! Invariant: `save` is the only function that writes `Table::Processes`, and it rewrites
//! the derived index entries (queue, by-state, deadlines, assigned, attributes, counters) from
//! the old and new record, so indexes cannot drift from process states.

use super::colonies::scan_all;
use super::keys::{self, DeadlineKind, Table};
use super::tx::{Direction, StateRead, StoreError};
use super::workflows::{self, GraphChange};
use super::{auth, get_json, refuse_unless, validate, Ctx, Event, Outcome};
use proto::command::{Reply, Response};
use proto::process::{process_state as ps, PRIORITY_STEP_NANOS};
use proto::{units, ApiError, Attribute, Executor, FunctionSpec, GoTime, Process};
use serde_json::Value;
use std::collections::BTreeSet;

/// Queue entries examined per assign before giving up: bounds the work of one assign when
/// many queued processes target other executors (names, location, resources).
pub(crate) const ASSIGN_SCAN_MAX: usize = 4096;
/// Page size of the queue scan during assign.
const ASSIGN_PAGE: usize = 64;
const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The index keys derived from a process record.
fn index_keys(p: &Process) -> BTreeSet<(Table, Vec<u8>)> {
    let colony = p.spec.conditions.colonyname.as_str();
    let submitted = p.submissiontime.unix_nanos().unwrap_or(0);
    let mut set = BTreeSet::new();
    set.insert((
        Table::ByState,
        keys::by_state(colony, p.state, submitted, &p.processid),
    ));
    if p.state == ps::WAITING && !p.waitforparents {
        let executortype = p.spec.conditions.executortype.as_str();
        let key = keys::queue(colony, executortype, p.prioritytime, &p.processid);
        set.insert((Table::Queue, key));
    }
    if let (ps::WAITING, Some(at)) = (p.state, p.waitdeadline.unix_nanos()) {
        set.insert((
            Table::Deadlines,
            keys::deadline(DeadlineKind::Wait, at, &p.processid),
        ));
    }
    if p.state == ps::RUNNING {
        if let Some(at) = p.execdeadline.unix_nanos() {
            set.insert((
                Table::Deadlines,
                keys::deadline(DeadlineKind::Exec, at, &p.processid),
            ));
        }
        let key = keys::join(&[p.assignedexecutorid.as_bytes(), p.processid.as_bytes()]);
        set.insert((Table::Assigned, key));
    }
    set
}

/// Writes `new` (or deletes the process when `None`) and brings every index in line.
pub(super) fn save<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    old: Option<&Process>,
    new: Option<&Process>,
) -> Result<(), StoreError> {
    let old_keys = old.map(index_keys).unwrap_or_default();
    let new_keys = new.map(index_keys).unwrap_or_default();
    for (table, key) in old_keys.difference(&new_keys) {
        ctx.tx.delete(*table, key.clone());
    }
    for (table, key) in new_keys.difference(&old_keys) {
        ctx.tx.put(*table, key.clone(), Vec::new());
    }
    let old_attributes: BTreeSet<&str> = old
        .iter()
        .flat_map(|p| p.attributes.iter().map(|a| a.attributeid.as_str()))
        .collect();
    let new_attributes: BTreeSet<&str> = new
        .iter()
        .flat_map(|p| p.attributes.iter().map(|a| a.attributeid.as_str()))
        .collect();
    for id in old_attributes.difference(&new_attributes) {
        ctx.tx.delete(Table::Attributes, id.as_bytes().to_vec());
    }
    if let Some(p) = new {
        for id in new_attributes.difference(&old_attributes) {
            ctx.tx.put(
                Table::Attributes,
                id.as_bytes().to_vec(),
                p.processid.clone().into_bytes(),
            );
        }
    }
    let count_of = |p: &Process| (p.spec.conditions.colonyname.clone(), p.state);
    if old.map(count_of) != new.map(count_of) {
        if let Some(p) = old {
            add_count(ctx, &p.spec.conditions.colonyname, p.state, -1)?;
        }
        if let Some(p) = new {
            add_count(ctx, &p.spec.conditions.colonyname, p.state, 1)?;
        }
    }
    let graph_of = old.or(new).map(|p| p.processgraphid.as_str());
    if let Some(graphid) = graph_of.filter(|id| !id.is_empty()) {
        let (old_state, new_state) = (old.map(|p| p.state), new.map(|p| p.state));
        if old_state != new_state {
            ctx.graph_changes.push(GraphChange {
                graphid: graphid.to_string(),
                processid: old.or(new).map(|p| p.processid.clone()).unwrap_or_default(),
                old: old_state,
                new: new_state,
            });
        }
    }
    match (old, new) {
        (_, Some(p)) => ctx.put_json(Table::Processes, p.processid.clone().into_bytes(), p),
        (Some(p), None) => {
            ctx.tx
                .delete(Table::Processes, p.processid.clone().into_bytes());
            super::channels::remove_of_process(ctx, &p.processid)?;
        }
        (None, None) => {}
    }
    if let Some(p) = new.filter(|p| old.is_none_or(|o| o.state != p.state)) {
        ctx.events.push(Event::ProcessChanged {
            processid: p.processid.clone(),
            colonyname: p.spec.conditions.colonyname.clone(),
            executortype: p.spec.conditions.executortype.clone(),
            state: p.state,
        });
    }
    if let Some(p) = new.filter(|p| p.state == ps::WAITING && !p.waitforparents) {
        let enqueued = old.is_none_or(|o| o.state != ps::WAITING || o.waitforparents);
        if enqueued {
            ctx.events.push(Event::Enqueued {
                colonyname: p.spec.conditions.colonyname.clone(),
                executortype: p.spec.conditions.executortype.clone(),
            });
        }
    }
    Ok(())
}

fn add_count<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    state: i32,
    delta: i64,
) -> Result<(), StoreError> {
    let key = keys::count(colony, state);
    let current = read_count(&ctx.tx, &key)?;
    let next = current + delta;
    assert!(next >= 0, "process count of {colony}/{state} went negative");
    ctx.tx.put(Table::Meta, key, next.to_le_bytes().to_vec());
    Ok(())
}

/// The counter stored at `key` (0 when absent).
pub(crate) fn read_count<R: StateRead + ?Sized>(state: &R, key: &[u8]) -> Result<i64, StoreError> {
    match state.get(Table::Meta, key)? {
        None => Ok(0),
        Some(bytes) => {
            let array: [u8; 8] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| StoreError(format!("corrupt counter at {key:?}")))?;
            Ok(i64::from_le_bytes(array))
        }
    }
}

/// The process `id`, or a not-found refusal.
pub(super) fn load<R: StateRead + ?Sized>(ctx: &Ctx<'_, R>, id: &str) -> Outcome<Process> {
    match get_json::<Process, _>(&ctx.tx, Table::Processes, id.as_bytes())? {
        Some(p) => Ok(Ok(p)),
        None => Ok(Err(ApiError::not_found(format!(
            "process with id {id:?} not found"
        )))),
    }
}

pub(super) fn deadline_after(now: i64, seconds: i64) -> GoTime {
    if seconds > 0 {
        GoTime::from_unix_nanos(now.saturating_add(seconds.saturating_mul(NANOS_PER_SECOND)))
    } else {
        GoTime::ZERO
    }
}

pub(super) fn submit<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    spec: &FunctionSpec,
) -> Outcome<Reply> {
    let spec = refuse_unless!(validate::spec(spec));
    let colony = spec.conditions.colonyname.clone();
    refuse_unless!(auth::colony(&ctx.tx, &colony)?);
    let member = refuse_unless!(auth::require_member(&ctx.tx, &colony, ctx.caller(), true)?);
    let caller = ctx.caller().to_string();
    let process = refuse_unless!(create(ctx, spec, &caller, member.name(), "")?);
    Ok(Ok(Reply::Process(Box::new(process))))
}

/// Creates a waiting process from a checked `spec` on behalf of an initiator; `seed`
/// distinguishes the processes one command creates.
pub(super) fn create<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    spec: FunctionSpec,
    initiatorid: &str,
    initiatorname: &str,
    seed: &str,
) -> Outcome<Process> {
    let now = ctx.now();
    let process = Process {
        processid: proto::crypto::sha3_hex(
            format!("{}/{seed}process", ctx.command.request_id).as_bytes(),
        ),
        initiatorid: initiatorid.to_string(),
        initiatorname: initiatorname.to_string(),
        state: ps::WAITING,
        prioritytime: now.saturating_sub(spec.priority * PRIORITY_STEP_NANOS),
        submissiontime: GoTime::from_unix_nanos(now),
        waitdeadline: deadline_after(now, spec.maxwaittime),
        spec,
        ..Process::default()
    };
    if get_json::<Process, _>(&ctx.tx, Table::Processes, process.processid.as_bytes())?.is_some() {
        return Ok(Err(ApiError::conflict(
            "process id collision: request id reused",
        )));
    }
    save(ctx, None, Some(&process))?;
    Ok(Ok(process))
}

/// True when `executor` with the given free resources may run `p`.
fn matches(executor: &Executor, p: &Process, cpu: Option<i64>, mem: Option<i64>) -> bool {
    spec_matches(executor, &p.spec, cpu, mem)
}

/// True when `executor` (with `cpu` millicores and `mem` MiB free, if it says) may run a
/// process of `spec` of its colony and type.
pub(crate) fn spec_matches(
    executor: &Executor,
    spec: &proto::FunctionSpec,
    cpu: Option<i64>,
    mem: Option<i64>,
) -> bool {
    let c = &spec.conditions;
    let named = c.executornames.is_empty() || c.executornames.contains(&executor.executorname);
    let located =
        c.locationname.is_empty() || c.locationname.eq_ignore_ascii_case(&executor.locationname);
    let fits = |needed: Result<i64, String>, free: Option<i64>| match free {
        None => true,
        Some(free) => needed.unwrap_or(0) <= free,
    };
    named
        && located
        && fits(units::parse_cpu_millis(&c.cpu), cpu)
        && fits(units::parse_mem_mib(&c.mem), mem)
}

/// The first queued process (in `prioritytime` order) that `executor` may run, examining at
/// most `ASSIGN_SCAN_MAX` queue entries.
pub(crate) fn find_match<R: StateRead + ?Sized>(
    state: &R,
    executor: &Executor,
    cpu: Option<i64>,
    mem: Option<i64>,
) -> Result<Option<Process>, StoreError> {
    let prefix = keys::prefix(&[
        executor.colonyname.as_bytes(),
        executor.executortype.as_bytes(),
    ]);
    let mut after: Option<Vec<u8>> = None;
    let mut examined = 0;
    loop {
        let page = state.scan(
            Table::Queue,
            &prefix,
            after.as_deref(),
            Direction::Forward,
            ASSIGN_PAGE,
        )?;
        for (key, _) in &page {
            examined += 1;
            let p = indexed_process(state, Table::Queue, key)?;
            debug_assert_eq!(p.state, ps::WAITING);
            if matches(executor, &p, cpu, mem) {
                return Ok(Some(p));
            }
        }
        if page.len() < ASSIGN_PAGE || examined >= ASSIGN_SCAN_MAX {
            return Ok(None);
        }
        after = page.last().map(|(key, _)| key.clone());
    }
}

pub(super) fn assign<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    cpu: Option<i64>,
    mem: Option<i64>,
) -> Outcome<Reply> {
    refuse_unless!(auth::colony(&ctx.tx, colony)?);
    let member = refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    let auth::Member::Executor(mut executor) = member else {
        return Ok(Err(ApiError::forbidden(
            "Access denied, only executors can be assigned",
        )));
    };
    let paused = super::colonies::is_paused(&ctx.tx, colony)?;
    let found = match paused {
        true => None,
        false => find_match(&ctx.tx, &executor, cpu, mem)?,
    };
    let now = ctx.now();
    executor.lastheardfromtime = GoTime::from_unix_nanos(now);
    let executor_key = keys::join(&[colony.as_bytes(), executor.executorname.as_bytes()]);
    ctx.put_json(Table::Executors, executor_key, &executor);
    let Some(old) = found else {
        return Ok(Ok(match paused {
            true => Reply::AssignmentsPaused,
            false => Reply::NothingToAssign,
        }));
    };
    let process = Process {
        input: workflows::input_of(ctx, &old)?,
        state: ps::RUNNING,
        isassigned: true,
        assignedexecutorid: executor.executorid.clone(),
        starttime: GoTime::from_unix_nanos(now),
        execdeadline: deadline_after(now, old.spec.maxexectime),
        ..old.clone()
    };
    save(ctx, Some(&old), Some(&process))?;
    Ok(Ok(Reply::Process(Box::new(process))))
}

/// `assign` for the long-poll `key`: the process assigned to it before, if one was (within
/// the deduplication window), else a new assignment, recorded under `key` when it is one.
pub(super) fn assign_for<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    key: &str,
    colony: &str,
    cpu: Option<i64>,
    mem: Option<i64>,
) -> Outcome<Reply> {
    if let Some(recorded) = get_json::<Response, _>(&ctx.tx, Table::Requests, key.as_bytes())? {
        return Ok(recorded.0);
    }
    let reply = assign(ctx, colony, cpu, mem)?;
    if let Ok(Reply::Process(_)) = &reply {
        ctx.put_json(
            Table::Requests,
            key.as_bytes().to_vec(),
            &Response(reply.clone()),
        );
        let by_time = keys::request_time(ctx.now(), key);
        ctx.tx.put(Table::RequestsByTime, by_time, Vec::new());
    }
    Ok(reply)
}

/// Loads a process, checking the caller is a member of its colony.
fn load_as_member<R: StateRead + ?Sized>(
    ctx: &Ctx<'_, R>,
    id: &str,
) -> Outcome<(Process, auth::Member)> {
    let p = refuse_unless!(load(ctx, id)?);
    let colony = &p.spec.conditions.colonyname;
    let member = refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    Ok(Ok((p, member)))
}

/// Loads a process the caller is assigned to, checking membership of its colony; returns
/// it with the caller (its executor).
fn assigned_to_caller<R: StateRead + ?Sized>(
    ctx: &Ctx<'_, R>,
    id: &str,
) -> Outcome<(Process, auth::Member)> {
    let (p, member) = refuse_unless!(load_as_member(ctx, id)?);
    if !p.isassigned || p.assignedexecutorid != ctx.caller() {
        let message =
            format!("Access denied, caller is not the executor assigned to process {id:?}");
        return Ok(Err(ApiError::forbidden(message)));
    }
    Ok(Ok((p, member)))
}

fn not_running(p: &Process) -> ApiError {
    ApiError::bad_request(format!(
        "process {:?} is not running (state {})",
        p.processid, p.state
    ))
}

pub(super) fn close_successful<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    id: &str,
    out: &[Value],
) -> Outcome<Reply> {
    let (old, executor) = refuse_unless!(assigned_to_caller(ctx, id)?);
    if old.state == ps::SUCCESS {
        // ColonyOS accepts a repeated close by the same executor; it changes nothing.
        return Ok(Ok(Reply::Done));
    }
    if old.state != ps::RUNNING {
        return Ok(Err(not_running(&old)));
    }
    // An empty `out` keeps what `setoutputmsg` stored (clients set output, then close).
    let output = if out.is_empty() {
        old.output.clone()
    } else {
        out.to_vec()
    };
    let process = Process {
        state: ps::SUCCESS,
        endtime: GoTime::from_unix_nanos(ctx.now()),
        output,
        ..old.clone()
    };
    save(ctx, Some(&old), Some(&process))?;
    super::functions::record_run(ctx, &process, executor.name())?;
    Ok(Ok(Reply::Done))
}

pub(super) fn close_failed<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    id: &str,
    errors: &[String],
) -> Outcome<Reply> {
    let (old, _) = refuse_unless!(assigned_to_caller(ctx, id)?);
    if old.state != ps::RUNNING {
        return Ok(Err(not_running(&old)));
    }
    let process = fail(&old, ctx.now(), errors.to_vec());
    save(ctx, Some(&old), Some(&process))?;
    Ok(Ok(Reply::Done))
}

/// `p` closed as FAILED at `now` with `errors`.
pub(super) fn fail(p: &Process, now: i64, errors: Vec<String>) -> Process {
    Process {
        state: ps::FAILED,
        endtime: GoTime::from_unix_nanos(now),
        errors,
        ..p.clone()
    }
}

pub(super) fn set_output<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    id: &str,
    out: &[Value],
) -> Outcome<Reply> {
    let (old, _) = refuse_unless!(assigned_to_caller(ctx, id)?);
    if old.state != ps::RUNNING {
        return Ok(Err(not_running(&old)));
    }
    let process = Process {
        output: out.to_vec(),
        ..old.clone()
    };
    save(ctx, Some(&old), Some(&process))?;
    Ok(Ok(Reply::Done))
}

/// Loads a process outside any workflow, checking the caller is a member of its colony.
fn member_process<R: StateRead + ?Sized>(ctx: &Ctx<'_, R>, id: &str) -> Outcome<Process> {
    let (p, _) = refuse_unless!(load_as_member(ctx, id)?);
    if !p.processgraphid.is_empty() {
        let message = "process is part of a workflow; cancel or remove the workflow instead";
        return Ok(Err(ApiError::bad_request(message)));
    }
    Ok(Ok(p))
}

pub(super) fn cancel<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, id: &str) -> Outcome<Reply> {
    let old = refuse_unless!(member_process(ctx, id)?);
    if old.state != ps::WAITING && old.state != ps::RUNNING {
        let message = format!("process {id:?} cannot be cancelled in state {}", old.state);
        return Ok(Err(ApiError::bad_request(message)));
    }
    let process = Process {
        state: ps::CANCELLED,
        endtime: GoTime::from_unix_nanos(ctx.now()),
        ..old.clone()
    };
    save(ctx, Some(&old), Some(&process))?;
    Ok(Ok(Reply::Done))
}

pub(super) fn remove<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, id: &str) -> Outcome<Reply> {
    let old = refuse_unless!(member_process(ctx, id)?);
    if old.state == ps::RUNNING {
        return Ok(Err(ApiError::bad_request(format!(
            "process {id:?} is running; close it first"
        ))));
    }
    save(ctx, Some(&old), None)?;
    Ok(Ok(Reply::Done))
}

pub(super) fn remove_all<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    state: i32,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_colony_owner(&ctx.tx, colony, ctx.caller())?);
    let state = match state {
        ps::NOTSET => None,
        ps::RUNNING => {
            return Ok(Err(ApiError::bad_request(
                "running processes cannot be removed",
            )));
        }
        ps::WAITING | ps::SUCCESS | ps::FAILED | ps::CANCELLED => Some(state),
        other => {
            return Ok(Err(ApiError::bad_request(format!(
                "invalid process state {other}"
            ))))
        }
    };
    remove_matching(ctx, colony, state)?;
    Ok(Ok(Reply::Done))
}

/// Deletes every process of `colony` in `state` (all states when `None`), except processes
/// of workflows: those go with their workflow.
pub(super) fn remove_matching<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    state: Option<i32>,
) -> Result<(), StoreError> {
    let prefix = keys::by_state_prefix(colony, state);
    for (key, _) in scan_all(ctx, Table::ByState, &prefix)? {
        let p = indexed_process(&ctx.tx, Table::ByState, &key)?;
        if p.processgraphid.is_empty() {
            save(ctx, Some(&p), None)?;
        }
    }
    Ok(())
}

/// Puts every process running on `executorid` back in the queue, retries unchanged.
pub(super) fn release_assigned<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    executorid: &str,
) -> Result<usize, StoreError> {
    let prefix = keys::prefix(&[executorid.as_bytes()]);
    let assigned = scan_all(ctx, Table::Assigned, &prefix)?;
    for (key, _) in &assigned {
        let p = indexed_process(&ctx.tx, Table::Assigned, key)?;
        let requeued = unassign(&p, ctx.now(), 0);
        save(ctx, Some(&p), Some(&requeued))?;
    }
    Ok(assigned.len())
}

/// `p` back in WAITING at `now`, with `extra_retries` added (queue position kept).
pub(super) fn unassign(p: &Process, now: i64, extra_retries: i64) -> Process {
    Process {
        state: ps::WAITING,
        isassigned: false,
        assignedexecutorid: String::new(),
        endtime: GoTime::from_unix_nanos(now),
        execdeadline: GoTime::ZERO,
        waitdeadline: deadline_after(now, p.spec.maxwaittime),
        retries: p.retries + extra_retries,
        ..p.clone()
    }
}

pub(super) fn add_attribute<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    attribute: &Attribute,
) -> Outcome<Reply> {
    let (old, _) = refuse_unless!(assigned_to_caller(ctx, &attribute.targetid)?);
    if old.state != ps::RUNNING {
        return Ok(Err(not_running(&old)));
    }
    refuse_unless!(validate::name("attribute key", &attribute.key));
    let attribute = Attribute {
        attributeid: Attribute::derive_id(&old.processid, &attribute.key, attribute.attributetype),
        targetid: old.processid.clone(),
        targetcolonyname: old.spec.conditions.colonyname.clone(),
        targetprocessgraphid: old.processgraphid.clone(),
        ..attribute.clone()
    };
    let mut process = old.clone();
    process
        .attributes
        .retain(|a| a.attributeid != attribute.attributeid);
    process.attributes.push(attribute.clone());
    save(ctx, Some(&old), Some(&process))?;
    Ok(Ok(Reply::Attribute(attribute)))
}

/// The process an index entry (`index` key ending in the process id) points at. A dangling
/// entry means the indexes and records disagree: corruption, reported as a store failure.
pub(crate) fn indexed_process<R: StateRead + ?Sized>(
    state: &R,
    index: Table,
    key: &[u8],
) -> Result<Process, StoreError> {
    let id = keys::trailing_id(key);
    get_json::<Process, _>(state, Table::Processes, id.as_bytes())?
        .ok_or_else(|| StoreError(format!("{} entry for missing process {id}", index.name())))
}
