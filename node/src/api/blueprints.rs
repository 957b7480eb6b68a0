//! Handlers for blueprint definitions, blueprints, their history, status and reconciliation.

use super::{checked, internal, json, reply_json, ApiState};
use crate::state::{auth, blueprints, validate};
use proto::command::Op;
use proto::{ApiError, Request};

pub(super) async fn handle(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<String, ApiError> {
    let view = state.store.view();
    let store = &view;
    let member_or_owner =
        |colony: &str| checked(auth::require_member_or_owner(store, colony, caller));
    let op = match request {
        Request::AddBlueprintDefinition(msg) => {
            Op::AddBlueprintDefinition(Box::new(msg.blueprintdefinition))
        }
        Request::RemoveBlueprintDefinition(msg) => Op::RemoveBlueprintDefinition {
            colonyname: msg.namespace,
            name: msg.name,
        },
        Request::AddBlueprint(msg) => Op::AddBlueprint(Box::new(msg.blueprint)),
        Request::UpdateBlueprint(msg) => Op::UpdateBlueprint {
            blueprint: Box::new(msg.blueprint),
            force: msg.forcegeneration,
        },
        Request::RemoveBlueprint(msg) => Op::RemoveBlueprint {
            colonyname: msg.namespace,
            name: msg.name,
        },
        Request::UpdateBlueprintStatus(msg) => Op::UpdateBlueprintStatus {
            colonyname: msg.colonyname,
            name: msg.blueprintname,
            status: msg.status,
        },
        Request::ReconcileBlueprint(msg) => Op::ReconcileBlueprint {
            colonyname: msg.namespace,
            name: msg.name,
            force: msg.force,
        },
        Request::GetBlueprintDefinition(msg) => {
            member_or_owner(&msg.colonyname)?;
            let found = blueprints::definition(store, &msg.colonyname, &msg.name);
            return match found.map_err(internal)? {
                Some(definition) => json(&definition),
                None => Err(ApiError::not_found(format!(
                    "blueprint definition {:?} not found",
                    msg.name
                ))),
            };
        }
        Request::GetBlueprintDefinitions(msg) => {
            member_or_owner(&msg.colonyname)?;
            let found = blueprints::definitions(store, &msg.colonyname);
            return json(&found.map_err(internal)?);
        }
        Request::GetBlueprint(msg) => {
            member_or_owner(&msg.namespace)?;
            let found = blueprints::blueprint(store, &msg.namespace, &msg.name);
            return match found.map_err(internal)? {
                Some(blueprint) => json(&blueprint),
                None => Err(ApiError::not_found(format!(
                    "blueprint {:?} not found",
                    msg.name
                ))),
            };
        }
        Request::GetBlueprints(msg) => {
            member_or_owner(&msg.namespace)?;
            let found = blueprints::blueprints(store, &msg.namespace, &msg.kind, &msg.locationname);
            return json(&found.map_err(internal)?);
        }
        Request::GetBlueprintHistory(msg) => {
            let id = validate::id("blueprintid", &msg.blueprintid)?;
            let Some(blueprint) = blueprints::blueprint_by_id(store, &id).map_err(internal)? else {
                return Err(ApiError::not_found(format!("blueprint {id:?} not found")));
            };
            member_or_owner(&blueprint.metadata.colonyname)?;
            let limit = usize::try_from(msg.limit).unwrap_or(0);
            return json(&blueprints::history(store, &id, limit).map_err(internal)?);
        }
        other => unreachable!("{} is not a blueprint request", other.msgtype()),
    };
    reply_json(state.propose(caller, op).await?)
}
