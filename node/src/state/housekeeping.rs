//! Apply logic of the leader's periodic cleanup (`Op::Housekeep`): retention of successful
//! processes, workflows and log lines, and removal of stale executors. Each run handles at
//! most `HOUSEKEEP_MAX` objects of each kind; the rest wait for the next run.
//!
//! Age is measured from submission (processes, workflows) and from the log line's time.

use super::colonies::decode;
use super::keys::{self, Table};
use super::tick::keys_before;
use super::tx::{StateRead, StoreError};
use super::{executors, logs, processes, query, workflows, Ctx, Outcome};
use proto::command::Reply;
use proto::process::process_state as ps;
use proto::{Executor, Log};

/// Objects of each kind one run removes at most.
pub(super) const HOUSEKEEP_MAX: usize = 1024;
const NANOS_PER_SECOND: i64 = 1_000_000_000;

pub(super) fn housekeep<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    retention_seconds: i64,
    stale_executor_seconds: i64,
) -> Outcome<Reply> {
    if !ctx.caller().is_empty() {
        return Ok(Err(proto::ApiError::forbidden(
            "only the mesh itself runs housekeeping",
        )));
    }
    let now = ctx.now();
    let colonies = query::colonies(&ctx.tx)?;
    let mut removed = 0;
    if retention_seconds > 0 {
        let horizon = now.saturating_sub(retention_seconds.saturating_mul(NANOS_PER_SECOND));
        for colony in &colonies {
            removed += expire_processes(ctx, &colony.name, horizon)?;
            removed += expire_logs(ctx, &colony.name, horizon)?;
        }
    }
    if stale_executor_seconds > 0 {
        let horizon = now.saturating_sub(stale_executor_seconds.saturating_mul(NANOS_PER_SECOND));
        for colony in &colonies {
            removed += remove_stale_executors(ctx, &colony.name, horizon)?;
        }
    }
    Ok(Ok(Reply::Expired(removed as u64)))
}

/// Executors one `ReleaseExecutors` command names at most.
pub(super) const RELEASE_EXECUTORS_MAX: usize = 256;

/// Re-queues the running processes of executors whose node went silent.
pub(super) fn release_executors<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    executor_ids: &[String],
) -> Outcome<Reply> {
    if !ctx.caller().is_empty() {
        return Ok(Err(proto::ApiError::forbidden(
            "only the mesh itself releases executors",
        )));
    }
    if executor_ids.len() > RELEASE_EXECUTORS_MAX {
        return Ok(Err(proto::ApiError::bad_request(format!(
            "{} executors, more than {RELEASE_EXECUTORS_MAX} at once",
            executor_ids.len()
        ))));
    }
    let mut released = 0;
    for id in executor_ids {
        released += processes::release_assigned(ctx, id)?;
    }
    ctx.events.push(super::Event::ExecutorsReleased {
        executor_ids: executor_ids.to_vec(),
    });
    Ok(Ok(Reply::Expired(released as u64)))
}

fn expire_processes<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    horizon: i64,
) -> Result<usize, StoreError> {
    let prefix = keys::by_state_prefix(colony, Some(ps::SUCCESS));
    let mut removed = 0;
    for key in keys_before(
        &ctx.tx,
        Table::GraphsByState,
        &prefix,
        horizon,
        HOUSEKEEP_MAX,
    )? {
        let id = keys::trailing_id(&key).to_string();
        if let Some(record) = workflows::load_record(&ctx.tx, &id)? {
            workflows::delete(ctx, &record)?;
            removed += 1;
        }
    }
    for key in keys_before(&ctx.tx, Table::ByState, &prefix, horizon, HOUSEKEEP_MAX)? {
        let p = processes::indexed_process(&ctx.tx, Table::ByState, &key)?;
        // Members of workflows go with their workflow.
        if p.processgraphid.is_empty() {
            processes::save(ctx, Some(&p), None)?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn expire_logs<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    horizon: i64,
) -> Result<usize, StoreError> {
    let prefix = keys::prefix(&[colony.as_bytes()]);
    let old = keys_before(&ctx.tx, Table::LogsByTime, &prefix, horizon, HOUSEKEEP_MAX)?;
    for key in &old {
        let Some(bytes) = ctx.tx.get(Table::LogsByTime, key)? else {
            continue;
        };
        let log: Log = decode(&bytes)?;
        logs::remove_line(ctx, key, &log);
    }
    Ok(old.len())
}

fn remove_stale_executors<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    horizon: i64,
) -> Result<usize, StoreError> {
    let stale: Vec<Executor> = query::executors(&ctx.tx, colony)?
        .into_iter()
        // Never heard from (registered but not yet polling) is not stale (ColonyOS).
        .filter(|e| {
            e.lastheardfromtime
                .unix_nanos()
                .is_some_and(|t| t < horizon)
        })
        .take(HOUSEKEEP_MAX)
        .collect();
    for executor in &stale {
        executors::delete(ctx, executor)?;
    }
    Ok(stale.len())
}
