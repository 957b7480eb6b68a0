//! Handlers for executors: registration, approval, listing.

use super::{checked, internal, json, reply_json, ApiState};
use crate::state::{auth, query};
use proto::command::Op;
use proto::{ApiError, Request};

pub(super) async fn handle(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<String, ApiError> {
    let view = state.store.view();
    let store = &view;
    let approval = |colonyname, executorname, approved| Op::SetExecutorApproval {
        colonyname,
        executorname,
        approved,
    };
    let op = match request {
        Request::AddExecutor(msg) => Op::AddExecutor(Box::new(msg.executor)),
        Request::ApproveExecutor(msg) => approval(msg.colonyname, msg.executorname, true),
        Request::RejectExecutor(msg) => approval(msg.colonyname, msg.executorname, false),
        Request::RemoveExecutor(msg) => Op::RemoveExecutor {
            colonyname: msg.colonyname,
            executorname: msg.executorname,
        },
        Request::UpdateExecutor(msg) => Op::UpdateExecutor {
            colonyname: msg.colonyname,
            executorname: msg.executorname,
            capabilities: msg.capabilities,
        },
        Request::ReportAllocation(msg) => Op::ReportAllocation {
            colonyname: msg.colonyname,
            executorname: msg.executorname,
            allocations: msg.allocations,
        },
        Request::ChangeExecutorId(msg) => {
            let echo = Request::ChangeExecutorId(msg.clone()).to_json();
            let op = Op::ChangeExecutorId {
                colonyname: msg.colonyname,
                executorid: msg.executorid,
            };
            state.propose(caller, op).await?;
            return Ok(echo);
        }
        Request::GetExecutors(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, false))?;
            return json(&query::executors(store, &msg.colonyname).map_err(internal)?);
        }
        Request::GetExecutor(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, true))?;
            let found = query::executor(store, &msg.colonyname, &msg.executorname);
            return match found.map_err(internal)? {
                Some(executor) => json(&executor),
                None => Err(ApiError::not_found(format!(
                    "executor with name {:?} not found",
                    msg.executorname
                ))),
            };
        }
        Request::GetExecutorById(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, true))?;
            let id = msg.executorid.to_ascii_lowercase();
            let found = auth::executor_by_id(store, &id).map_err(internal)?;
            return match found.filter(|e| e.colonyname == msg.colonyname) {
                Some(executor) => json(&executor),
                None => Err(ApiError::not_found(format!(
                    "executor with id {:?} not found",
                    msg.executorid
                ))),
            };
        }
        other => unreachable!("{} is not an executor request", other.msgtype()),
    };
    reply_json(state.propose(caller, op).await?)
}
