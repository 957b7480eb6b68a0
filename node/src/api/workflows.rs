//! Handlers for workflows (process graphs): submit, get, list, cancel, remove, and children
//! added by the executor running a parent.

use super::{bounded_count, checked, internal, json, reply_json, ApiState};
use crate::state::{auth, query, validate, workflows};
use proto::command::Op;
use proto::process::process_state as ps;
use proto::{ApiError, Request};

pub(super) async fn write(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<String, ApiError> {
    let op = match request {
        // Stateless checks first, so bad input never reaches the log.
        Request::SubmitWorkflow(msg) => {
            workflows::validate_workflow(&msg.spec)?;
            Op::SubmitWorkflow(Box::new(msg.spec))
        }
        Request::RemoveProcessGraph(msg) => Op::RemoveProcessGraph {
            processgraphid: validate::id("processgraphid", &msg.processgraphid)?,
        },
        Request::RemoveAllProcessGraphs(msg) => Op::RemoveAllProcessGraphs {
            colonyname: msg.colonyname,
            state: msg.state,
        },
        Request::CancelProcessGraph(msg) => Op::CancelProcessGraph {
            processgraphid: validate::id("processgraphid", &msg.processgraphid)?,
        },
        Request::AddChild(msg) => Op::AddChild {
            processgraphid: validate::id("processgraphid", &msg.processgraphid)?,
            parentprocessid: validate::id("parentprocessid", &msg.parentprocessid)?,
            childprocessid: match msg.childprocessid.as_str() {
                "" => String::new(),
                id => validate::id("childprocessid", id)?,
            },
            spec: Box::new(msg.spec),
            insert: msg.insert,
        },
        other => unreachable!("{} is not a workflow write", other.msgtype()),
    };
    reply_json(state.propose(caller, op).await?)
}

pub(super) fn read(state: &ApiState, caller: &str, request: Request) -> Result<String, ApiError> {
    let view = state.store.view();
    match request {
        Request::GetProcessGraph(msg) => {
            let id = validate::id("processgraphid", &msg.processgraphid)?;
            let Some(graph) = query::process_graph(&view, &id).map_err(internal)? else {
                return Err(ApiError::not_found(format!(
                    "workflow with id {id:?} not found"
                )));
            };
            checked(auth::require_member(&view, &graph.colonyname, caller, true))?;
            json(&graph)
        }
        Request::GetProcessGraphs(msg) => {
            checked(auth::require_member(&view, &msg.colonyname, caller, true))?;
            let count = bounded_count(msg.count, query::LIST_COUNT_MAX)?;
            if !(ps::WAITING..=ps::CANCELLED).contains(&msg.state) {
                return Err(ApiError::bad_request(format!(
                    "invalid workflow state {}",
                    msg.state
                )));
            }
            let found = query::process_graphs(&view, &msg.colonyname, msg.state, count);
            json(&found.map_err(internal)?)
        }
        other => unreachable!("{} is not a workflow read", other.msgtype()),
    }
}
