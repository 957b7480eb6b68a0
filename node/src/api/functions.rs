//! Handlers for the function registry and for logs (process and executor log lines, reads
//! and search).

use super::{bounded_count, checked, internal, json, reply_json, ApiState};
use crate::state::query::{self, LogSource};
use crate::state::{auth, validate};
use proto::command::Op;
use proto::{ApiError, Request};

const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

pub(super) async fn handle(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<String, ApiError> {
    let view = state.store.view();
    let store = &view;
    let op = match request {
        Request::AddFunction(msg) => Op::AddFunction(Box::new(msg.fun)),
        Request::RemoveFunction(msg) => Op::RemoveFunction {
            functionid: validate::id("functionid", &msg.functionid)?,
        },
        Request::AddLog(msg) => {
            let processid = validate::id("processid", &msg.processid)?;
            let message = msg.message;
            // Filed under the executor too once every member applies that (a rolling upgrade
            // keeps the old command until then).
            let by_executor = crate::state::LEVEL_LOGS_BY_EXECUTOR;
            match state.fleet.mesh_applies(&state.raft, by_executor) {
                true => Op::AddProcessLog { processid, message },
                false => Op::AddLog { processid, message },
            }
        }
        Request::AddExecutorLog(msg) => Op::AddExecutorLog {
            colonyname: msg.colonyname,
            executorname: msg.executorname,
            message: msg.message,
        },
        Request::GetFunctions(msg) | Request::GetFunctionsByExecutor(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, true))?;
            let found = query::functions(store, &msg.colonyname, &msg.executorname);
            return json(&found.map_err(internal)?);
        }
        Request::GetLogs(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, true))?;
            let count = bounded_count(msg.count, query::LOG_COUNT_MAX)?;
            let source = if !msg.executorname.is_empty() {
                LogSource::Executor {
                    colony: &msg.colonyname,
                    name: &msg.executorname,
                }
            } else {
                let id = validate::id("processid", &msg.processid)?;
                let process = query::process(store, &id).map_err(internal)?;
                if process.is_none_or(|p| p.spec.conditions.colonyname != msg.colonyname) {
                    return Err(ApiError::not_found(format!(
                        "process with id {id:?} not found in colony {:?}",
                        msg.colonyname
                    )));
                }
                LogSource::Process(&msg.processid)
            };
            let found = query::logs(store, source, count, msg.since, msg.latest);
            return json(&found.map_err(internal)?);
        }
        Request::SearchLogs(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, true))?;
            let count = bounded_count(msg.count, query::LIST_COUNT_MAX)?;
            if !(1..=query::LOG_SEARCH_DAYS_MAX).contains(&msg.days) {
                return Err(ApiError::bad_request(format!(
                    "days must be between 1 and {}, not {}",
                    query::LOG_SEARCH_DAYS_MAX,
                    msg.days
                )));
            }
            let since = state.clock.now_nanos() - msg.days * NANOS_PER_DAY;
            let found = query::search_logs(store, &msg.colonyname, &msg.text, since, count);
            return json(&found.map_err(internal)?);
        }
        other => unreachable!("{} is not a function or log request", other.msgtype()),
    };
    reply_json(state.propose(caller, op).await?)
}
