//! Apply logic for log lines: a process's log (written only by its assigned executor while
//! it runs) and an executor's log (the lines it logs about itself and, since apply level 2,
//! those it adds to its processes). Every line is also indexed by colony and time, for search
//! and expiry.

use super::keys::{self, Table};
use super::processes::load;
use super::tx::StateRead;
use super::{auth, refuse_unless, Ctx, Outcome};
use proto::command::Reply;
use proto::process::process_state as ps;
use proto::{ApiError, Log};

/// Longest accepted log message, in bytes.
pub(super) const LOG_MESSAGE_BYTES_MAX: usize = 64 * 1024;

fn check_message(message: &str) -> Result<(), ApiError> {
    if message.len() > LOG_MESSAGE_BYTES_MAX {
        return Err(ApiError::bad_request(format!(
            "log message is {} bytes, longer than the limit of {LOG_MESSAGE_BYTES_MAX}",
            message.len()
        )));
    }
    Ok(())
}

/// The key of a line under `owner` (a process id, or colony and executor name): the owner,
/// the line's time, and the id of the request that added it.
fn line_key(owner: &[&[u8]], timestamp: i64, request: &[u8]) -> Vec<u8> {
    let time = keys::ordered_i64(timestamp);
    let mut parts = owner.to_vec();
    parts.extend_from_slice(&[&time, request]);
    keys::join(&parts)
}

/// Deletes the line `log`, found in the colony's time index under `by_time`, from everywhere
/// it is: its executor's log (a process's line since apply level 2; deleting an older one's
/// absent entry is a no-op), its process's log, and the time index.
pub(super) fn remove_line<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, by_time: &[u8], log: &Log) {
    let request = keys::trailing_id(by_time).as_bytes();
    let executor = [log.colonyname.as_bytes(), log.executorname.as_bytes()];
    let by_executor = line_key(&executor, log.timestamp, request);
    ctx.tx.delete(Table::ExecutorLogs, by_executor);
    if !log.processid.is_empty() {
        let by_process = line_key(&[log.processid.as_bytes()], log.timestamp, request);
        ctx.tx.delete(Table::Logs, by_process);
    }
    ctx.tx.delete(Table::LogsByTime, by_time.to_vec());
}

/// Writes `log` under each `(table, owner)` and in the colony's time index.
fn put<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, owners: &[(Table, &[&[u8]])], log: &Log) {
    let request = ctx.command.request_id.clone();
    for (table, owner) in owners {
        let key = line_key(owner, log.timestamp, request.as_bytes());
        ctx.put_json(*table, key, log);
    }
    let by_time = line_key(
        &[log.colonyname.as_bytes()],
        log.timestamp,
        request.as_bytes(),
    );
    ctx.put_json(Table::LogsByTime, by_time, log);
}

/// A line of a process's log; with `by_executor` (apply level 2) also in the log of the
/// executor that writes it.
pub(super) fn add<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    processid: &str,
    message: &str,
    by_executor: bool,
) -> Outcome<Reply> {
    refuse_unless!(check_message(message));
    let p = refuse_unless!(load(ctx, processid)?);
    let colony = p.spec.conditions.colonyname.clone();
    let member = refuse_unless!(auth::require_member(&ctx.tx, &colony, ctx.caller(), true)?);
    if p.state != ps::RUNNING || p.assignedexecutorid != ctx.caller() {
        return Ok(Err(ApiError::forbidden(format!(
            "Access denied, process {processid:?} is not running on the caller"
        ))));
    }
    let log = Log {
        processid: p.processid.clone(),
        colonyname: colony,
        executorname: member.name().to_string(),
        message: message.to_string(),
        timestamp: ctx.now(),
    };
    let process: [&[u8]; 1] = [p.processid.as_bytes()];
    let executor: [&[u8]; 2] = [log.colonyname.as_bytes(), log.executorname.as_bytes()];
    let owners: &[(Table, &[&[u8]])] = match by_executor {
        true => &[(Table::Logs, &process), (Table::ExecutorLogs, &executor)],
        false => &[(Table::Logs, &process)],
    };
    put(ctx, owners, &log);
    Ok(Ok(Reply::Done))
}

pub(super) fn add_executor_log<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    executorname: &str,
    message: &str,
) -> Outcome<Reply> {
    refuse_unless!(check_message(message));
    refuse_unless!(auth::colony(&ctx.tx, colony)?);
    let member = refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    if !matches!(&member, auth::Member::Executor(e) if e.executorname == executorname) {
        return Ok(Err(ApiError::forbidden(format!(
            "Access denied, only executor {executorname:?} writes its log"
        ))));
    }
    let log = Log {
        colonyname: colony.to_string(),
        executorname: executorname.to_string(),
        message: message.to_string(),
        timestamp: ctx.now(),
        ..Log::default()
    };
    let executor: [&[u8]; 2] = [colony.as_bytes(), executorname.as_bytes()];
    put(ctx, &[(Table::ExecutorLogs, &executor)], &log);
    Ok(Ok(Reply::Done))
}
