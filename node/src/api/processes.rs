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
use proto::failures::ColonyosFailure;
use proto::mesh::{AssignWait, AssignWaited};
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
        return Err(ColonyosFailure::ProcessNotFound.into());
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
            // The newest ones, listed oldest first as ColonyOS does.
            let mut found = found.map_err(internal)?;
            found.reverse();
            json(&found)
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
            "Access denied, only executors can be assigned",
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
    let executor = calling_executor(state, &msg.colonyname, caller)?;
    let seconds = u64::try_from(msg.timeout)
        .unwrap_or(0)
        .min(state.config.long_poll_seconds_max);
    // Every long-poll holds a unit of the node's limit, parked on the leader or waiting here.
    let slot = state
        .waiters
        .slot()
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let poll = LongPoll {
        state,
        slot,
        caller,
        executor,
        cpu_millis,
        mem_mib,
        one_try: msg.timeout < 0,
        deadline: crate::clock::monotonic() + Duration::from_secs(seconds),
        started: crate::clock::monotonic(),
        // Every command of this long-poll carries the same key: at most one process for it.
        key: state.clock.request_id(),
    };
    poll.run().await
}

/// Pause before asking again after a refusal that changes nothing by itself (no leader yet).
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// One assign long-poll.
///
/// While every member applies `Op::AssignFor`, the poll is parked on the leader, which pairs
/// it with matching submits in the same raft entry (one commit per dispatch, one wake-up
/// mesh-wide). Otherwise (a rolling upgrade) it waits here for this node's apply to wake it,
/// and proposes plain `Assign`s.
struct LongPoll<'a> {
    state: &'a ApiState,
    /// This poll's unit of the node's long-poll limit.
    slot: crate::sched::Slot,
    caller: &'a str,
    executor: Executor,
    cpu_millis: Option<i64>,
    mem_mib: Option<i64>,
    /// `timeout < 0`: one look, no waiting.
    one_try: bool,
    deadline: std::time::Instant,
    started: std::time::Instant,
    /// The long-poll's key (`Op::AssignFor`).
    key: String,
}

impl LongPoll<'_> {
    fn colony(&self) -> &str {
        &self.executor.colonyname
    }

    fn remaining(&self) -> Duration {
        self.deadline
            .saturating_duration_since(crate::clock::monotonic())
    }

    /// A local waiter, woken by this node's apply, under this poll's unit of the limit.
    fn register(&self) -> crate::sched::Ticket {
        let executortype = &self.executor.executortype;
        self.state
            .waiters
            .register_in(&self.slot, self.colony(), executortype)
    }

    fn paused(&self) -> Result<bool, ApiError> {
        let view = self.state.store.view();
        crate::state::colonies::is_paused(&view, self.colony()).map_err(internal)
    }

    /// Whether this node's replica holds work the executor can run.
    fn runnable_here(&self) -> Result<bool, ApiError> {
        let view = self.state.store.view();
        let (cpu, mem) = (self.cpu_millis, self.mem_mib);
        Ok(!self.paused()?
            && query::has_match(&view, &self.executor, cpu, mem).map_err(internal)?)
    }

    /// The answer to give when the wait ends with nothing assigned.
    fn nothing(&self) -> Result<String, ApiError> {
        match (self.paused()?, self.one_try) {
            (true, true) => Err(ColonyosFailure::Paused.into()),
            (true, false) => Err(ColonyosFailure::PausedTimeout.into()),
            (false, _) => Err(no_process()),
        }
    }

    /// The reply for an applied assign's response, or `None` when it assigned nothing.
    fn answered(&self, reply: Reply) -> Option<Result<String, ApiError>> {
        match reply {
            Reply::NothingToAssign | Reply::AssignmentsPaused => None,
            reply => {
                self.state.metrics.assigned(self.started.elapsed());
                Some(reply_json(reply))
            }
        }
    }

    fn op(&self, parked: bool) -> Op {
        let (colonyname, cpu_millis, mem_mib) =
            (self.colony().to_string(), self.cpu_millis, self.mem_mib);
        match parked {
            true => Op::AssignFor {
                key: self.key.clone(),
                colonyname,
                cpu_millis,
                mem_mib,
            },
            false => Op::Assign {
                colonyname,
                cpu_millis,
                mem_mib,
            },
        }
    }

    async fn run(mut self) -> Result<String, ApiError> {
        // An earlier attempt's outcome is unknown: the next one must be proposed at once.
        let mut resume = false;
        // How many waiters a local wake-up passed through (waiting here).
        let mut hops = None;
        loop {
            let parks = self
                .state
                .fleet
                .mesh_applies(&self.state.raft, crate::state::LEVEL_ASSIGN_FOR);
            // Waiting here: register before looking, so work enqueued after the look still
            // wakes us. (Parked on the leader, the leader wakes us.)
            let ticket = match parks {
                true => None,
                false => Some(self.register()),
            };
            // An idle executor still proposes an assign now and then: apply records that it
            // was heard from, so housekeeping does not take it for stale.
            let heard = self.executor.lastheardfromtime.unix_nanos();
            let heard = heard.unwrap_or(i64::MIN);
            let now = self.state.clock.now_nanos();
            let heartbeat_due = now.saturating_sub(heard) > HEARTBEAT_NANOS;
            if resume || heartbeat_due || self.runnable_here()? {
                match self.state.propose(self.caller, self.op(parks)).await {
                    Ok(reply) => {
                        resume = false;
                        self.executor.lastheardfromtime = proto::GoTime::from_unix_nanos(now);
                        if let Some(answer) = self.answered(reply) {
                            return answer;
                        }
                    }
                    // With a key, the outcome can be asked again; without, it is the answer.
                    Err(error) if !parks || error.code != ErrorCode::Unavailable => {
                        return Err(error)
                    }
                    Err(error) => {
                        resume = true;
                        if self.remaining().is_zero() {
                            return Err(error);
                        }
                        tokio::time::sleep(RETRY_PAUSE).await;
                        continue;
                    }
                }
            } else if let (Some(hops), Some(ticket)) = (hops.take(), &ticket) {
                // We were woken for work we cannot run: let the next waiter look.
                let executortype = &self.executor.executortype;
                let _ = self
                    .state
                    .waiters
                    .pass_on(self.colony(), executortype, ticket, hops);
            }
            let remaining = self.remaining();
            if let Some(ticket) = ticket {
                if self.one_try {
                    return self.one_try_here().await;
                }
                let woken = tokio::select! {
                    woken = ticket.notified() => Some(woken),
                    () = tokio::time::sleep(remaining) => None,
                    () = self.state.shutdown.clone().wait() => {
                        return Err(ApiError::unavailable("node is shutting down"));
                    }
                };
                hops = woken;
            } else {
                let wait_ms = match self.one_try {
                    true => 0,
                    false => remaining.min(crate::raft::PARK_WAIT_MAX).as_millis() as u64,
                };
                let wait = AssignWait {
                    caller: self.caller.to_string(),
                    colonyname: self.colony().to_string(),
                    cpu_millis: self.cpu_millis,
                    mem_mib: self.mem_mib,
                    key: self.key.clone(),
                    wait_ms,
                    resume,
                };
                let waited = tokio::select! {
                    waited = self.state.raft.await_assign(wait) => waited,
                    () = self.state.shutdown.clone().wait() => {
                        return Err(ApiError::unavailable("node is shutting down"));
                    }
                };
                resume = false;
                match waited {
                    Some(AssignWaited::Answered(response)) => match response.0 {
                        Err(refusal) => return Err(refusal),
                        Ok(reply) => {
                            if let Some(answer) = self.answered(reply) {
                                return answer;
                            }
                        }
                    },
                    Some(AssignWaited::Nothing) => {}
                    Some(AssignWaited::Unknown { reason }) => {
                        tracing::debug!("assign outcome unknown, asking again: {reason}");
                        resume = true;
                    }
                    Some(AssignWaited::NotLeader { .. }) => {
                        let pause = RETRY_PAUSE.min(remaining);
                        tokio::time::sleep(pause).await;
                    }
                    // The leader cannot park now: wait here this round.
                    Some(AssignWaited::Unsupported) | None => {
                        self.wait_here(remaining, &mut hops).await?;
                    }
                }
                if resume {
                    continue;
                }
            }
            if self.one_try || self.remaining().is_zero() {
                return self.nothing();
            }
        }
    }

    /// Waits for this node's apply to wake a local waiter (or the deadline) once.
    async fn wait_here(
        &self,
        remaining: Duration,
        hops: &mut Option<usize>,
    ) -> Result<(), ApiError> {
        if self.one_try {
            return Ok(());
        }
        let ticket = self.register();
        if self.runnable_here()? {
            return Ok(());
        }
        tokio::select! {
            woken = ticket.notified() => *hops = Some(woken),
            () = tokio::time::sleep(remaining.min(crate::raft::PARK_WAIT_MAX)) => {}
            () = self.state.shutdown.clone().wait() => {
                return Err(ApiError::unavailable("node is shutting down"));
            }
        }
        Ok(())
    }

    /// A one-try assign without parking: a process submitted through another node may not
    /// have reached this replica yet, so catch up to the leader's commit index and look once
    /// more before saying there is nothing.
    async fn one_try_here(&self) -> Result<String, ApiError> {
        if self.state.raft.linearize().await.is_ok() && self.runnable_here()? {
            let reply = self.state.propose(self.caller, self.op(false)).await?;
            if let Some(answer) = self.answered(reply) {
                return answer;
            }
        }
        self.nothing()
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
