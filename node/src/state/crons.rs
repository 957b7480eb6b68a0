//! Apply logic for crons: workflows started by the leader's tick when a cron expression or
//! interval comes due. Since the tick is a replicated command, a cron fires once per period
//! across the whole mesh, also after a leader change.
//!
//! A due cron whose previous workflow is still running and which waits for it
//! (`waitforprevprocessgraph`) skips that run; its next run is computed as usual. The leaves'
//! output of the previous workflow becomes the input of the next workflow's roots.

use super::colonies::scan_all;
use super::cronexpr::Schedule;
use super::keys::{self, Table};
use super::tick::keys_before;
use super::tx::{Direction, StateRead, StoreError};
use super::workflows::{self, Start};
use super::{auth, get_json, refuse_unless, validate, Ctx, Outcome};
use proto::command::Reply;
use proto::process::process_state as ps;
use proto::{ApiError, Cron, FunctionSpec, GoTime, WorkflowSpec};

/// The period ColonyOS reports for its cron checker, in ms. Here crons run on the tick.
pub(crate) const CHECKER_PERIOD_MS: i64 = 1000;
/// Longest accepted `workflowspec` text of a cron or generator.
pub(crate) const WORKFLOW_TEXT_BYTES_MAX: usize = 256 * 1024;
const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The specs of a cron's or generator's workflow, put in `colony` and checked.
pub(crate) fn parse_workflow(text: &str, colony: &str) -> Result<Vec<FunctionSpec>, ApiError> {
    if text.len() > WORKFLOW_TEXT_BYTES_MAX {
        return Err(ApiError::bad_request(format!(
            "workflowspec is {} bytes, longer than the limit of {WORKFLOW_TEXT_BYTES_MAX}",
            text.len()
        )));
    }
    let mut workflow: WorkflowSpec = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("workflowspec is not a workflow: {e}")))?;
    workflow.colonyname = colony.to_string();
    workflows::validate_workflow(&workflow)
}

/// When a cron runs next after `now` (Unix ns), or why it never will.
fn next_run(cron: &Cron, now: i64) -> Result<i64, ApiError> {
    if cron.interval > 0 {
        return Ok(now.saturating_add(cron.interval.saturating_mul(NANOS_PER_SECOND)));
    }
    let schedule = Schedule::parse(&cron.cronexpression).map_err(ApiError::bad_request)?;
    match schedule.next_after(now.div_euclid(NANOS_PER_SECOND)) {
        Some(secs) => Ok(secs.saturating_mul(NANOS_PER_SECOND)),
        None => Err(ApiError::bad_request(format!(
            "cron expression {:?} never matches",
            cron.cronexpression
        ))),
    }
}

fn load<R: StateRead + ?Sized>(state: &R, id: &str) -> Result<Option<Cron>, StoreError> {
    get_json(state, Table::Crons, id.as_bytes())
}

fn due_key(cron: &Cron) -> Option<Vec<u8>> {
    let at = cron.nextrun.unix_nanos()?;
    Some(keys::join(&[
        &keys::ordered_i64(at),
        cron.cronid.as_bytes(),
    ]))
}

/// Writes `new` (or deletes when `None`) with its listing and due entries.
fn save<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, old: Option<&Cron>, new: Option<&Cron>) {
    if let Some(key) = old.and_then(due_key) {
        ctx.tx.delete(Table::CronsDue, key);
    }
    if let Some(key) = new.and_then(due_key) {
        ctx.tx.put(Table::CronsDue, key, Vec::new());
    }
    match (old, new) {
        (_, Some(cron)) => {
            let listed = keys::join(&[cron.colonyname.as_bytes(), cron.cronid.as_bytes()]);
            ctx.tx.put(Table::CronsByColony, listed, Vec::new());
            ctx.put_json(Table::Crons, cron.cronid.clone().into_bytes(), cron);
        }
        (Some(cron), None) => {
            let listed = keys::join(&[cron.colonyname.as_bytes(), cron.cronid.as_bytes()]);
            ctx.tx.delete(Table::CronsByColony, listed);
            ctx.tx
                .delete(Table::Crons, cron.cronid.clone().into_bytes());
        }
        (None, None) => {}
    }
}

pub(super) fn add<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, cron: &Cron) -> Outcome<Reply> {
    let colony = cron.colonyname.as_str();
    refuse_unless!(validate::name("cron.name", &cron.name));
    refuse_unless!(auth::colony(&ctx.tx, colony)?);
    let member = refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    if cron.interval != -1 && cron.interval <= 0 {
        return Ok(Err(ApiError::bad_request(format!(
            "cron interval must be -1 (use cronexpression) or positive, not {}",
            cron.interval
        ))));
    }
    if cron.random && cron.interval <= 0 {
        return Ok(Err(ApiError::bad_request(
            "a random cron needs a positive interval",
        )));
    }
    refuse_unless!(parse_workflow(&cron.workflowspec, colony));
    let now = ctx.now();
    let mut cron = Cron {
        cronid: proto::crypto::sha3_hex(format!("{}/cron", ctx.command.request_id).as_bytes()),
        initiatorid: ctx.caller().to_string(),
        initiatorname: member.name().to_string(),
        lastrun: GoTime::ZERO,
        prevprocessgraphid: String::new(),
        checkerperiod: CHECKER_PERIOD_MS,
        ..cron.clone()
    };
    cron.nextrun = GoTime::from_unix_nanos(refuse_unless!(next_run(&cron, now)));
    if load(&ctx.tx, &cron.cronid)?.is_some() {
        return Ok(Err(ApiError::conflict(
            "cron id collision: request id reused",
        )));
    }
    save(ctx, None, Some(&cron));
    Ok(Ok(Reply::Cron(Box::new(cron))))
}

/// The cron `id` if the caller is a member of its colony.
pub(crate) fn member_cron<R: StateRead + ?Sized>(
    state: &R,
    id: &str,
    caller: &str,
) -> Outcome<Cron> {
    let Some(cron) = load(state, id)? else {
        return Ok(Err(ApiError::not_found(format!(
            "cron with id {id:?} not found"
        ))));
    };
    refuse_unless!(auth::require_member(state, &cron.colonyname, caller, true)?);
    Ok(Ok(cron))
}

/// Starts the cron's workflow unless it waits for a previous one that is still running.
/// Returns whether it started.
fn start<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, cron: &mut Cron) -> Result<bool, StoreError> {
    let previous = match cron.prevprocessgraphid.as_str() {
        "" => None,
        id => workflows::load_record(&ctx.tx, id)?,
    };
    if let Some(previous) = &previous {
        let running = !ps::is_terminal(previous.graph.state);
        if cron.waitforprevprocessgraph && running {
            return Ok(false);
        }
    }
    let root_input = match &previous {
        Some(previous) => workflows::leaf_output(ctx, previous)?,
        None => Vec::new(),
    };
    // Checked when the cron was added; a refusal now (e.g. the colony changed) skips the run.
    let Ok(specs) = parse_workflow(&cron.workflowspec, &cron.colonyname) else {
        return Ok(false);
    };
    let seed = format!("{}/", cron.cronid);
    let start = Start {
        initiatorid: &cron.initiatorid,
        initiatorname: &cron.initiatorname,
        seed: &seed,
        root_input,
        root_args: None,
    };
    let colony = cron.colonyname.clone();
    match workflows::create(ctx, &colony, specs, start)? {
        Ok(graph) => {
            cron.prevprocessgraphid = graph.processgraphid;
            cron.lastrun = GoTime::from_unix_nanos(ctx.now());
            Ok(true)
        }
        Err(_) => Ok(false),
    }
}

pub(super) fn run<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, id: &str) -> Outcome<Reply> {
    let old = refuse_unless!(member_cron(&ctx.tx, id, ctx.caller())?);
    let mut cron = old.clone();
    if !start(ctx, &mut cron)? {
        return Ok(Err(ApiError::bad_request(format!(
            "cron {id:?} waits for its previous workflow, which is still running"
        ))));
    }
    save(ctx, Some(&old), Some(&cron));
    Ok(Ok(Reply::Cron(Box::new(cron))))
}

pub(super) fn remove<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, id: &str) -> Outcome<Reply> {
    let cron = refuse_unless!(member_cron(&ctx.tx, id, ctx.caller())?);
    save(ctx, Some(&cron), None);
    Ok(Ok(Reply::Done))
}

/// The cron named `name` in `colony`, if any.
pub(super) fn by_name<R: StateRead + ?Sized>(
    ctx: &Ctx<'_, R>,
    colony: &str,
    name: &str,
) -> Result<Option<Cron>, StoreError> {
    for (key, _) in scan_all(
        ctx,
        Table::CronsByColony,
        &keys::prefix(&[colony.as_bytes()]),
    )? {
        if let Some(cron) = load(&ctx.tx, keys::trailing_id(&key))? {
            if cron.name == name {
                return Ok(Some(cron));
            }
        }
    }
    Ok(None)
}

/// Adds a cron the mesh itself manages (blueprint reconciliation) unless one of that name
/// exists in its colony. Its workflow must be valid.
pub(super) fn ensure<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    cron: Cron,
) -> Result<(), StoreError> {
    if by_name(ctx, &cron.colonyname, &cron.name)?.is_some() {
        return Ok(());
    }
    let mut cron = Cron {
        cronid: proto::crypto::sha3_hex(
            format!("{}/cron/{}", ctx.command.request_id, cron.name).as_bytes(),
        ),
        checkerperiod: CHECKER_PERIOD_MS,
        ..cron
    };
    let Ok(next) = next_run(&cron, ctx.now()) else {
        return Ok(());
    };
    cron.nextrun = GoTime::from_unix_nanos(next);
    save(ctx, None, Some(&cron));
    Ok(())
}

/// Removes the cron named `name` in `colony`, if any.
pub(super) fn remove_named<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    name: &str,
) -> Result<(), StoreError> {
    if let Some(cron) = by_name(ctx, colony, name)? {
        save(ctx, Some(&cron), None);
    }
    Ok(())
}

/// Removes every cron of `colony`.
pub(super) fn remove_all<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
) -> Result<(), StoreError> {
    for (key, _) in scan_all(
        ctx,
        Table::CronsByColony,
        &keys::prefix(&[colony.as_bytes()]),
    )? {
        let id = keys::trailing_id(&key).to_string();
        if let Some(cron) = load(&ctx.tx, &id)? {
            save(ctx, Some(&cron), None);
        }
    }
    Ok(())
}

/// Starts the crons due at the tick's time (at most `budget`); returns how many came due.
pub(super) fn tick<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    budget: usize,
) -> Result<usize, StoreError> {
    let now = ctx.now();
    // Due at or before the tick's time.
    let due = keys_before(&ctx.tx, Table::CronsDue, b"", now.saturating_add(1), budget)?;
    let mut handled = 0;
    for key in due {
        let id = keys::trailing_id(&key).to_string();
        let old =
            load(&ctx.tx, &id)?.ok_or_else(|| StoreError(format!("due cron {id} missing")))?;
        let mut cron = old.clone();
        start(ctx, &mut cron)?;
        // A cron that can never run again stays listed but leaves the due index.
        cron.nextrun = next_run(&cron, now).map_or(GoTime::ZERO, GoTime::from_unix_nanos);
        save(ctx, Some(&old), Some(&cron));
        handled += 1;
    }
    Ok(handled)
}

/// Up to `count` crons of `colony`.
pub fn list<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    count: usize,
) -> Result<Vec<Cron>, StoreError> {
    let prefix = keys::prefix(&[colony.as_bytes()]);
    let listed = state.scan(
        Table::CronsByColony,
        &prefix,
        None,
        Direction::Forward,
        count,
    )?;
    let mut crons = Vec::with_capacity(listed.len());
    for (key, _) in listed {
        let id = keys::trailing_id(&key);
        crons
            .push(load(state, id)?.ok_or_else(|| StoreError(format!("listed cron {id} missing")))?);
    }
    Ok(crons)
}
