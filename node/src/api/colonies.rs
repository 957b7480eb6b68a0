//! Handlers for server info, colonies and users.

use super::{checked, internal, json, reply_json, ApiState, BUILD_VERSION};
use crate::state::{auth, query};
use proto::command::Op;
use proto::msgs::{Backend, PauseStatusReply, ServerInfoReply, VersionReply};
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
                tls: state.config.tls_cert.is_some(),
                insecure: true,
            }],
        }),
        Request::GetStatistics(_) => {
            checked(auth::require_server_owner(&state.store.view(), caller))?;
            json(&query::statistics(&state.store.view()).map_err(internal)?)
        }
        Request::GetCluster(_) => {
            checked(auth::require_server_owner(&state.store.view(), caller))?;
            json(&super::observe::cluster_view(state))
        }
        Request::GetDashboard(_) => {
            checked(auth::require_server_owner(&state.store.view(), caller))?;
            json(&proto::mesh::DashboardReply {
                servedby: state.node_name.clone(),
                path: "/ui/".into(),
                key: state.dashboard_key.clone(),
            })
        }
        Request::GetBans(_) => {
            checked(auth::require_server_owner(&state.store.view(), caller))?;
            json(&proto::mesh::BansReply {
                servedby: state.node_name.clone(),
                bans: state.guard.bans(crate::clock::monotonic()),
                lifted: 0,
            })
        }
        Request::RemoveBan(msg) => {
            checked(auth::require_server_owner(&state.store.view(), caller))?;
            let (source, _) = crate::guard::parse_network(&msg.source)
                .ok()
                .filter(|(addr, bits)| *bits == if addr.is_ipv4() { 32 } else { 128 })
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{:?} is not an IP address", msg.source))
                })?;
            let now = crate::clock::monotonic();
            let lifted = state.guard.lift(source, now);
            json(&proto::mesh::BansReply {
                servedby: state.node_name.clone(),
                bans: state.guard.bans(now),
                lifted,
            })
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

/// Whether a pause-or-resume request pauses.
enum Kind {
    Pause,
    Other,
}

pub(super) async fn colony(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<String, ApiError> {
    let view = state.store.view();
    let store = &view;
    let request_kind = match request {
        Request::PauseAssignments(_) => Kind::Pause,
        _ => Kind::Other,
    };
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
        Request::PauseAssignments(msg) | Request::ResumeAssignments(msg) => {
            let paused = matches!(request_kind, Kind::Pause);
            let op = Op::SetPaused {
                colonyname: msg.colonyname,
                paused,
            };
            reply_json(state.propose(caller, op).await?)
        }
        Request::GetPauseStatus(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, false))?;
            let paused = crate::state::colonies::is_paused(store, &msg.colonyname);
            json(&PauseStatusReply {
                msgtype: "pausestatusreplymsg".to_string(),
                ispaused: paused.map_err(internal)?,
                colonyname: msg.colonyname,
            })
        }
        Request::ChangeColonyId(msg) => {
            let echo = Request::ChangeColonyId(msg.clone()).to_json();
            let op = Op::ChangeColonyId {
                colonyname: msg.colonyname,
                colonyid: msg.colonyid,
            };
            state.propose(caller, op).await?;
            Ok(echo)
        }
        Request::ChangeServerId(msg) => {
            let echo = Request::ChangeServerId(msg.clone()).to_json();
            let op = Op::ChangeServerId {
                serverid: msg.serverid,
            };
            state.propose(caller, op).await?;
            Ok(echo)
        }
        Request::AddLocation(msg) => {
            reply_json(state.propose(caller, Op::AddLocation(msg.location)).await?)
        }
        Request::RemoveLocation(msg) => {
            let op = Op::RemoveLocation {
                colonyname: msg.colonyname,
                name: msg.name,
            };
            reply_json(state.propose(caller, op).await?)
        }
        Request::GetLocations(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, false))?;
            json(&query::locations(store, &msg.colonyname).map_err(internal)?)
        }
        Request::GetLocation(msg) => {
            checked(auth::require_member(store, &msg.colonyname, caller, false))?;
            match query::location(store, &msg.colonyname, &msg.name).map_err(internal)? {
                Some(location) => json(&location),
                None => Err(ApiError::not_found(format!(
                    "location with name {:?} not found",
                    msg.name
                ))),
            }
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
        Request::ChangeUserId(msg) => {
            let echo = Request::ChangeUserId(msg.clone()).to_json();
            let op = Op::ChangeUserId {
                colonyname: msg.colonyname,
                userid: msg.userid,
            };
            state.propose(caller, op).await?;
            Ok(echo)
        }
        other => unreachable!("{} is not a user request", other.msgtype()),
    }
}
