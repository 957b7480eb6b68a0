//! Handlers for server info, colonies and users.

use super::{checked, internal, json, reply_json, ApiState, BUILD_VERSION};
use crate::state::{auth, query};
use proto::command::Op;
use proto::msgs::{Backend, ServerInfoReply, VersionReply};
use proto::{ApiError, Request};

pub(super) async fn server(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<String, ApiError> {
    match request {
        Request::Version(_) => json(&VersionReply {
            buildversion: BUILD_VERSION.to_string(),
            buildtime: String::new(),
            msgtype: "versionmsg".to_string(),
        }),
        Request::GetServerInfo(_) => json(&ServerInfoReply {
            buildversion: BUILD_VERSION.to_string(),
            buildtime: String::new(),
            backends: vec![Backend {
                kind: "http".to_string(),
                port: i64::from(state.advertised_port),
                host: state.advertised_host.clone(),
                tls: false,
                insecure: true,
            }],
        }),
        Request::GetStatistics(_) => {
            checked(auth::require_server_owner(&state.store.view(), caller))?;
            json(&query::statistics(&state.store.view()).map_err(internal)?)
        }
        Request::GetCluster(_) => {
            checked(auth::require_server_owner(&state.store.view(), caller))?;
            let mut cluster = state.raft.cluster(&state.node_name);
            let fleet = state.fleet.view();
            for node in &mut cluster.nodes {
                let heard = fleet.get(&node.peerid);
                node.lastheardms = heard.map(|(_, ago)| ago.as_millis() as u64);
                node.up = heard.is_some_and(|(_, ago)| *ago < state.status_down);
                node.version = heard
                    .map(|(status, _)| status.version.clone())
                    .unwrap_or_default();
            }
            json(&cluster)
        }
        Request::GetStateDigest(_) => {
            checked(auth::require_server_owner(&state.store.view(), caller))?;
            let store = state.store.clone();
            let (appliedindex, digest) =
                tokio::task::spawn_blocking(move || crate::raft::state_digest(&store))
                    .await
                    .map_err(|e| ApiError::internal(format!("state digest: {e}")))?
                    .map_err(|e| ApiError::internal(format!("state digest: {e}")))?;
            json(&proto::mesh::StateDigestReply {
                servedby: state.node_name.clone(),
                appliedindex,
                digest,
            })
        }
        other => unreachable!("{} is not a server request", other.msgtype()),
    }
}

pub(super) async fn colony(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<String, ApiError> {
    let view = state.store.view();
    let store = &view;
    match request {
        Request::AddColony(msg) => {
            reply_json(state.propose(caller, Op::AddColony(msg.colony)).await?)
        }
        Request::RemoveColony(msg) => {
            let op = Op::RemoveColony {
                colonyname: msg.colonyname,
            };
            reply_json(state.propose(caller, op).await?)
        }
        Request::GetColonies(_) => {
            checked(auth::require_server_owner(store, caller))?;
            json(&query::colonies(store).map_err(internal)?)
        }
        Request::GetColony(msg) => {
            let colony = checked(auth::colony(store, &msg.colonyname))?;
            checked(auth::require_member(store, &msg.colonyname, caller, true))?;
            json(&colony)
        }
        Request::GetColonyStats(msg) => {
            checked(auth::colony(store, &msg.colonyname))?;
            checked(auth::require_member(store, &msg.colonyname, caller, true))?;
            json(&query::colony_statistics(store, &msg.colonyname).map_err(internal)?)
        }
        other => unreachable!("{} is not a colony request", other.msgtype()),
    }
}

pub(super) async fn user(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<String, ApiError> {
    let view = state.store.view();
    let store = &view;
    match request {
        Request::AddUser(msg) => reply_json(state.propose(caller, Op::AddUser(msg.user)).await?),
        Request::RemoveUser(msg) => {
            let op = Op::RemoveUser {
                colonyname: msg.colonyname,
                name: msg.name,
            };
            reply_json(state.propose(caller, op).await?)
        }
        Request::GetUsers(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, false))?;
            json(&query::users(store, &msg.colonyname).map_err(internal)?)
        }
        Request::GetUser(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, false))?;
            match query::user(store, &msg.colonyname, &msg.name).map_err(internal)? {
                Some(user) => json(&user),
                None => Err(ApiError::not_found(format!(
                    "user with name {:?} not found",
                    msg.name
                ))),
            }
        }
        Request::GetUserById(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, false))?;
            let userid = msg.userid.to_ascii_lowercase();
            match auth::user_by_id(store, &msg.colonyname, &userid).map_err(internal)? {
                Some(user) => json(&user),
                None => Err(ApiError::not_found(format!(
                    "user with id {:?} not found",
                    msg.userid
                ))),
            }
        }
        other => unreachable!("{} is not a user request", other.msgtype()),
    }
}
