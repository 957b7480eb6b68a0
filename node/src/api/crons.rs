//! Handlers for crons and generators.

use super::{checked, internal, json, reply_json, ApiState};
use crate::state::{auth, crons, generators, query, validate};
use proto::command::Op;
use proto::{ApiError, Request};

pub(super) async fn handle(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<String, ApiError> {
    let view = state.store.view();
    let store = &view;
    let op = match request {
        Request::AddCron(msg) => Op::AddCron(Box::new(msg.cron)),
        Request::RunCron(msg) => Op::RunCron {
            cronid: validate::id("cronid", &msg.cronid)?,
        },
        Request::RemoveCron(msg) => Op::RemoveCron {
            cronid: validate::id("cronid", &msg.cronid)?,
        },
        Request::AddGenerator(msg) => Op::AddGenerator(Box::new(msg.generator)),
        Request::PackGenerator(msg) => Op::PackGenerator {
            generatorid: validate::id("generatorid", &msg.generatorid)?,
            arg: msg.arg,
        },
        Request::RemoveGenerator(msg) => Op::RemoveGenerator {
            generatorid: validate::id("generatorid", &msg.generatorid)?,
        },
        Request::GetCron(msg) => {
            let id = validate::id("cronid", &msg.cronid)?;
            return json(&checked(crons::member_cron(store, &id, caller))?);
        }
        Request::GetCrons(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, true))?;
            let found = match count_arg(msg.count)? {
                0 => Vec::new(),
                count => crons::list(store, &msg.colonyname, count).map_err(internal)?,
            };
            return json(&found);
        }
        Request::GetGenerator(msg) => {
            let id = validate::id("generatorid", &msg.generatorid)?;
            return json(&checked(generators::member_generator(store, &id, caller))?);
        }
        Request::ResolveGenerator(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, true))?;
            let found = generators::by_name(store, &msg.colonyname, &msg.generatorname);
            return match found.map_err(internal)? {
                Some(generator) => json(&generator),
                None => Err(ApiError::not_found(format!(
                    "generator with name {:?} not found",
                    msg.generatorname
                ))),
            };
        }
        Request::GetGenerators(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, true))?;
            let found = match count_arg(msg.count)? {
                0 => Vec::new(),
                count => generators::list(store, &msg.colonyname, count).map_err(internal)?,
            };
            return json(&found);
        }
        other => unreachable!("{} is not a cron or generator request", other.msgtype()),
    };
    reply_json(state.propose(caller, op).await?)
}

/// A listing's `count` as ColonyOS takes it (a SQL `LIMIT`: 0 lists nothing, no upper
/// bound), bounded at `LIST_OBJECTS_MAX`; a negative count is refused.
fn count_arg(count: i64) -> Result<usize, ApiError> {
    match usize::try_from(count) {
        Ok(count) => Ok(count.min(query::LIST_OBJECTS_MAX)),
        Err(_) => Err(ApiError::bad_request(format!("count {count} is negative"))),
    }
}
