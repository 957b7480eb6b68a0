//! Handlers for processes: submit, the assign long-poll, close, cancel, remove, listing,
//! attributes.
//!
//! Assign: the executor's own node registers a waiter, checks its local replica for a process
//! the executor could run, and only then proposes an `Assign` command, which apply resolves
//! against the replicated queue. Waiting ends when an applied command enqueues matching work
//! (one waiter woken per process) or the timeout passes.

use super::{bounded_count, checked, internal, json, no_process, reply_json, ApiState};
use crate::state::query::{self, ProcessFilter};
use crate::state::{auth, validate};
use proto::command::{Op, Reply};
use proto::msgs::AssignMsg;
use proto::process::process_state as ps;
use proto::{ApiError, ErrorCode, Executor, Process, Request};
use std::time::Duration;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
/// How often an idle long-polling executor is recorded as heard from (apply sets
/// `lastheardfromtime` on every assign it decides).
const HEARTBEAT_NANOS: i64 = 60 * NANOS_PER_SECOND;

pub(super) async fn write(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<String, ApiError> {
    let op = match request {
        // Stateless checks first, so bad input never reaches the log.
        Request::Submit(msg) => Op::Submit(Box::new(validate::spec(&msg.spec)?)),
        Request::CloseSuccessful(msg) => Op::CloseSuccessful {
            processid: msg.processid,
            out: msg.out,
        },
        Request::CloseFailed(msg) => Op::CloseFailed {
            processid: msg.processid,
            errors: msg.errors,
        },
        Request::SetOutput(msg) => Op::SetOutput {
            processid: msg.processid,
            out: msg.out,
        },
        Request::CancelProcess(msg) => Op::CancelProcess {
            processid: msg.processid,
        },
        Request::RemoveProcess(msg) => Op::RemoveProcess {
            processid: msg.processid,
        },
        Request::RemoveAllProcesses(msg) => Op::RemoveAllProcesses {
            colonyname: msg.colonyname,
            state: msg.state,
        },
        Request::AddAttribute(msg) => Op::AddAttribute(msg.attribute),
        other => unreachable!("{} is not a process write", other.msgtype()),
    };
    reply_json(state.propose(caller, op).await?)
}

/// The process `id` if the caller is a member of its colony.
fn member_process(state: &ApiState, caller: &str, id: &str) -> Result<Process, ApiError> {
    let Some(process) = query::process(&state.store.view(), id).map_err(internal)? else {
        return Err(ApiError::not_found(format!(
            "process with id {id:?} not found"
        )));
    };
    let colony = &process.spec.conditions.colonyname;
    checked(auth::require_member(
        &state.store.view(),
        colony,
        caller,
        true,
    ))?;
    Ok(process)
}

fn state_arg(state: i32) -> Result<i32, ApiError> {
    match state {
        ps::WAITING | ps::RUNNING | ps::SUCCESS | ps::FAILED | ps::CANCELLED => Ok(state),
        other => Err(ApiError::bad_request(format!(
            "invalid process state {other}"
        ))),
    }
}

pub(super) fn read(state: &ApiState, caller: &str, request: Request) -> Result<String, ApiError> {
    let view = state.store.view();
    let store = &view;
    match request {
        Request::GetProcess(msg) => json(&member_process(state, caller, &msg.processid)?),
        Request::GetAttribute(msg) => {
            let found = query::attribute(store, &msg.attributeid).map_err(internal)?;
            let Some((process, attribute)) = found else {
                let message = format!("attribute with id {:?} not found", msg.attributeid);
                return Err(ApiError::not_found(message));
            };
            let colony = &process.spec.conditions.colonyname;
            checked(auth::require_member(store, colony, caller, true))?;
            json(&attribute)
        }
        Request::GetProcesses(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, true))?;
            let count = bounded_count(msg.count, query::LIST_COUNT_MAX)?;
            if !msg.processgraphid.is_empty() {
                let id = validate::id("processgraphid", &msg.processgraphid)?;
                let found = query::workflow_processes(store, &msg.colonyname, &id, msg.state);
                let mut found = found.map_err(internal)?;
                found.truncate(count);
                return json(&found);
            }
            let filter = ProcessFilter {
                executortype: msg.executortype,
                label: msg.label,
                initiator: msg.initiator,
                ..ProcessFilter::default()
            };
            let states = match msg.state {
                ps::NOTSET => vec![
                    ps::WAITING,
                    ps::RUNNING,
                    ps::SUCCESS,
                    ps::FAILED,
                    ps::CANCELLED,
                ],
                one => vec![state_arg(one)?],
            };
            let mut found = Vec::new();
            for process_state in states {
                let more = query::processes(store, &msg.colonyname, process_state, count, &filter);
                found.extend(more.map_err(internal)?);
            }
            // Newest first over all states asked for.
            found.sort_by_key(|p| std::cmp::Reverse(p.submissiontime.unix_nanos()));
            found.truncate(count);
            json(&found)
        }
        Request::GetProcessHist(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, true))?;
            let since = state
                .clock
                .now_nanos()
                .saturating_sub(msg.seconds.saturating_mul(NANOS_PER_SECOND));
            let filter = ProcessFilter {
                executorid: msg.executorid.to_ascii_lowercase(),
                submitted_since_nanos: Some(since),
                ..ProcessFilter::default()
            };
            let process_state = state_arg(msg.state)?;
            let found = query::processes(
                store,
                &msg.colonyname,
                process_state,
                query::LIST_COUNT_MAX,
                &filter,
            );
            json(&found.map_err(internal)?)
        }
        other => unreachable!("{} is not a process read", other.msgtype()),
    }
}

/// The calling executor, if it is an approved executor of `colony` (else the refusal apply
/// would give).
fn calling_executor(state: &ApiState, colony: &str, caller: &str) -> Result<Executor, ApiError> {
    checked(auth::colony(&state.store.view(), colony))?;
    match checked(auth::require_member(
        &state.store.view(),
        colony,
        caller,
        true,
    ))? {
        auth::Member::Executor(executor) => Ok(*executor),
        auth::Member::User(_) => Err(ApiError::forbidden(
            "access denied, only executors can be assigned",
        )),
    }
}

pub(super) async fn assign(
    state: &ApiState,
    caller: &str,
    msg: AssignMsg,
) -> Result<String, ApiError> {
    if msg.timeout == 0 {
        return Err(ApiError::bad_request(
            "invalid timeout value, timeout cannot be zero",
        ));
    }
    let (cpu_millis, mem_mib) = validate::available(&msg.availablecpu, &msg.availablemem)?;
    let mut executor = calling_executor(state, &msg.colonyname, caller)?;
    let seconds = u64::try_from(msg.timeout)
        .unwrap_or(0)
        .min(state.config.long_poll_seconds_max);
    let deadline = tokio::time::sleep(Duration::from_secs(seconds));
    tokio::pin!(deadline);
    let started = crate::clock::monotonic();
    let (colony, executortype) = (&executor.colonyname, &executor.executortype);
    let mut hops = None;
    // Whether a one-try assign has already caught up with the leader before giving up.
    let mut caught_up = false;
    let paused = || -> Result<bool, ApiError> {
        crate::state::colonies::is_paused(&state.store.view(), colony).map_err(internal)
    };
    loop {
        // Register before looking, so work enqueued after the look still wakes us.
        let ticket = state
            .waiters
            .register(colony, executortype)
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        let runnable = !paused()?
            && query::has_match(&state.store.view(), &executor, cpu_millis, mem_mib)
                .map_err(internal)?;
        // An idle executor still proposes an assign now and then: apply records that it was
        // heard from, so housekeeping does not take it for stale.
        let heard = executor.lastheardfromtime.unix_nanos().unwrap_or(i64::MIN);
        let heartbeat_due = state.clock.now_nanos().saturating_sub(heard) > HEARTBEAT_NANOS;
        if runnable || heartbeat_due {
            let op = Op::Assign {
                colonyname: colony.clone(),
                cpu_millis,
                mem_mib,
            };
            let proposed_at = state.clock.now_nanos();
            let reply = state.propose(caller, op).await?;
            executor.lastheardfromtime = proto::GoTime::from_unix_nanos(proposed_at);
            match reply {
                // Another executor was faster, or the colony was paused meanwhile.
                Reply::NothingToAssign | Reply::AssignmentsPaused => {}
                reply => {
                    state.metrics.assigned(started.elapsed());
                    return reply_json(reply);
                }
            }
        } else if let Some(hops) = hops {
            // We were woken for work we cannot run: let the next waiter look.
            state.waiters.pass_on(colony, executortype, &ticket, hops);
        }
        if msg.timeout < 0 {
            // One try: but a process submitted through another node may not have reached
            // this replica yet. Catch up to the leader's commit index and look once more.
            if !caught_up && state.raft.linearize().await.is_ok() {
                caught_up = true;
                continue;
            }
            if paused()? {
                return Err(ApiError::unavailable("colony assignments are paused"));
            }
            return Err(no_process());
        }
        tokio::select! {
            woken = ticket.notified() => hops = Some(woken),
            () = &mut deadline => {
                if paused()? {
                    return Err(ApiError::new(
                        ErrorCode::Timeout,
                        "Assignment timeout: colony assignments are paused",
                    ));
                }
                return Err(no_process());
            }
            () = state.shutdown.clone().wait() => {
                return Err(ApiError::unavailable("node is shutting down"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proto::process::process_state as ps;

    #[test]
    fn state_argument_is_range_checked() {
        assert_eq!(super::state_arg(ps::SUCCESS).unwrap(), ps::SUCCESS);
        assert!(super::state_arg(9)
            .unwrap_err()
            .message
            .contains("invalid process state 9"));
    }
}
