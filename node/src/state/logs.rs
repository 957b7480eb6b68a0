//! Apply logic for log lines: a process's log (written only by its assigned executor while
//! it runs) and an executor's own log. Every line is also indexed by colony and time, for
//! search.

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

/// Writes `log` under `primary` and in the colony's time index.
fn put<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, table: Table, primary: &[&[u8]], log: &Log) {
    let time = keys::ordered_i64(log.timestamp);
    let request = ctx.command.request_id.clone();
    let mut parts = primary.to_vec();
    parts.extend_from_slice(&[&time, request.as_bytes()]);
    ctx.put_json(table, keys::join(&parts), log);
    let by_time = keys::join(&[log.colonyname.as_bytes(), &time, request.as_bytes()]);
    ctx.put_json(Table::LogsByTime, by_time, log);
}

pub(super) fn add<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    processid: &str,
    message: &str,
) -> Outcome<Reply> {
    refuse_unless!(check_message(message));
    let p = refuse_unless!(load(ctx, processid)?);
    let colony = p.spec.conditions.colonyname.clone();
    let member = refuse_unless!(auth::require_member(&ctx.tx, &colony, ctx.caller(), true)?);
    if p.state != ps::RUNNING || p.assignedexecutorid != ctx.caller() {
        return Ok(Err(ApiError::forbidden(format!(
            "access denied, process {processid:?} is not running on the caller"
        ))));
    }
    let log = Log {
        processid: p.processid.clone(),
        colonyname: colony,
        executorname: member.name().to_string(),
        message: message.to_string(),
        timestamp: ctx.now(),
    };
    put(ctx, Table::Logs, &[p.processid.as_bytes()], &log);
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
            "access denied, only executor {executorname:?} writes its log"
        ))));
    }
    let log = Log {
        colonyname: colony.to_string(),
        executorname: executorname.to_string(),
        message: message.to_string(),
        timestamp: ctx.now(),
        ..Log::default()
    };
    let primary: [&[u8]; 2] = [colony.as_bytes(), executorname.as_bytes()];
    put(ctx, Table::ExecutorLogs, &primary, &log);
    Ok(Ok(Reply::Done))
}
