//! Apply logic of the leader's clock tick: expire `maxexectime` (re-queue with `retries + 1`,
//! or fail at `maxretries`) and `maxwaittime` (fail), and start due crons and timed-out
//! generators, as of the tick's `now`.

use super::keys::{self, DeadlineKind, Table};
use super::processes::{self, fail, unassign};
use super::tx::{Direction, StateRead, StoreError};
use super::{Ctx, Outcome};
use proto::command::Reply;
use proto::process::process_state as ps;

/// Deadlines handled per tick; the rest wait for the next tick, so one tick's batch is bounded.
pub(crate) const TICK_EXPIRE_MAX: usize = 1024;

/// Crons and generators started per tick, together; the rest start on the next tick.
pub(crate) const TICK_START_MAX: usize = 64;

const EXEC_LIMIT_ERROR: &str = "Maximum execution time limit exceeded";
const WAIT_LIMIT_ERROR: &str = "Maximum waiting time limit exceeded";

pub(super) fn tick<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>) -> Outcome<Reply> {
    let mut expired = 0;
    for kind in [DeadlineKind::Exec, DeadlineKind::Wait] {
        let budget = TICK_EXPIRE_MAX - expired;
        expired += expire(ctx, kind, budget)?;
    }
    forget_requests(ctx)?;
    let started = super::crons::tick(ctx, TICK_START_MAX)?;
    super::generators::tick(ctx, TICK_START_MAX - started)?;
    Ok(Ok(Reply::Expired(expired as u64)))
}

fn expire<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    kind: DeadlineKind,
    budget: usize,
) -> Result<usize, StoreError> {
    let now = ctx.now();
    let prefix = keys::prefix(&[&[kind as u8]]);
    let due = keys_before(&ctx.tx, Table::Deadlines, &prefix, now, budget)?;
    let mut expired = 0;
    for key in due {
        let old = processes::indexed_process(&ctx.tx, Table::Deadlines, &key)?;
        let new = match kind {
            DeadlineKind::Exec => {
                debug_assert_eq!(old.state, ps::RUNNING);
                let max = old.spec.maxretries;
                if max > -1 && old.retries >= max {
                    fail(&old, now, vec![EXEC_LIMIT_ERROR.to_string()])
                } else {
                    unassign(&old, now, 1)
                }
            }
            DeadlineKind::Wait => {
                debug_assert_eq!(old.state, ps::WAITING);
                fail(&old, now, vec![WAIT_LIMIT_ERROR.to_string()])
            }
        };
        processes::save(ctx, Some(&old), Some(&new))?;
        expired += 1;
    }
    Ok(expired)
}

/// Forgets deduplication records older than the window, at most `TICK_EXPIRE_MAX` per tick.
fn forget_requests<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>) -> Result<(), StoreError> {
    let horizon = ctx.now().saturating_sub(super::DEDUP_WINDOW_NANOS);
    for key in keys_before(
        &ctx.tx,
        Table::RequestsByTime,
        b"",
        horizon,
        TICK_EXPIRE_MAX,
    )? {
        let id = keys::trailing_id(&key).as_bytes().to_vec();
        ctx.tx.delete(Table::Requests, id);
        ctx.tx.delete(Table::RequestsByTime, key);
    }
    Ok(())
}

/// Keys of `table` under `prefix` whose time (the ordered integer right after the prefix) is
/// before `before`, oldest first, looking at most at `limit` entries: what is due in a
/// time-ordered index. A key without a time is corruption.
pub(super) fn keys_before<R: StateRead + ?Sized>(
    state: &R,
    table: Table,
    prefix: &[u8],
    before: i64,
    limit: usize,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut due = Vec::new();
    for (key, _) in state.scan(table, prefix, None, Direction::Forward, limit)? {
        let at = keys::read_ordered_i64(&key, prefix.len())
            .ok_or_else(|| StoreError(format!("corrupt {} key {key:?}", table.name())))?;
        if at >= before {
            break;
        }
        due.push(key);
    }
    Ok(due)
}
