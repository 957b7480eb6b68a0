//! Operator endpoints: `/ready` (joined and caught up), `/metrics` (Prometheus text) and the
//! mesh view that `getclustermsg` and the metrics share.

use super::ApiState;
use crate::metrics::{Snapshot, CONTENT_TYPE};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use proto::mesh::ClusterReply;
use std::sync::Arc;
use std::time::Duration;

/// How long `/ready` waits to confirm this node has caught up.
const READY_WAIT: Duration = Duration::from_secs(2);

/// `GET /ready`: 200 once this node sees a leader and has applied the leader's commit index
/// (it is a member and caught up) and its built-in executors that register themselves have
/// done so; 503 naming why not. `/health` only says the process is alive.
pub(super) async fn ready(State(state): State<Arc<ApiState>>) -> (StatusCode, String) {
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    match tokio::time::timeout(READY_WAIT, state.raft.linearize()).await {
        Ok(Ok(())) => match state.executors.unregistered() {
            pending if pending.is_empty() => (StatusCode::OK, "ready\n".into()),
            pending => (
                unavailable,
                format!(
                    "not ready: built-in executors not registered yet: {}\n",
                    crate::exec::describe(&pending)
                ),
            ),
        },
        Ok(Err(error)) => (unavailable, format!("not ready: {error}\n")),
        Err(_) => (
            unavailable,
            format!("not ready: not caught up within {READY_WAIT:?}\n"),
        ),
    }
}

/// The mesh as this node sees it: raft membership with each member's gossip health.
pub(super) fn cluster_view(state: &ApiState) -> ClusterReply {
    let mut cluster = state.raft.cluster(&state.node_name);
    let fleet = state.fleet.view();
    for node in &mut cluster.nodes {
        let heard = fleet.get(&node.peerid);
        node.lastheardms = heard.map(|(_, ago)| ago.as_millis() as u64);
        node.up = heard.is_some_and(|(_, ago)| *ago < state.status_down);
        node.version = heard
            .map(|(status, _)| status.version.clone())
            .unwrap_or_default();
        node.status = heard.map(|(status, _)| status.clone());
    }
    cluster
}

/// How recently a peer must have answered to count as connected.
const PEER_RECENT: Duration = Duration::from_secs(10);

/// `GET /metrics`: the Prometheus text format.
pub(super) async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    let snapshot = match snapshot(&state).await {
        Ok(snapshot) => snapshot,
        Err(error) => {
            tracing::error!("failed to gather metrics: {error}");
            let message = format!("failed to gather metrics: {error}\n");
            return (StatusCode::INTERNAL_SERVER_ERROR, message).into_response();
        }
    };
    let text = state.metrics.render(&snapshot);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

async fn snapshot(state: &ApiState) -> Result<Snapshot, String> {
    let cluster = cluster_view(state);
    let last = cluster.lastlogindex.unwrap_or(0);
    let applied = cluster.appliedindex.unwrap_or(0);
    let leader_here = cluster
        .leader
        .as_ref()
        .is_some_and(|l| l.name == state.node_name);
    // On the leader every member's matched index is known: the commit index is the highest
    // one a majority of voters holds. Elsewhere the applied index is the best known.
    let (commit_index, lag) = match leader_here {
        true => {
            let mut matched: Vec<u64> = cluster
                .nodes
                .iter()
                .filter(|n| n.role == "voter")
                .map(|n| n.matchedindex.unwrap_or(0))
                .collect();
            matched.sort_unstable_by(|a, b| b.cmp(a));
            let commit = matched.get(matched.len() / 2).copied().unwrap_or(applied);
            let lag = cluster
                .nodes
                .iter()
                .map(|n| {
                    (
                        n.name.clone(),
                        last.saturating_sub(n.matchedindex.unwrap_or(0)),
                    )
                })
                .collect();
            (commit.max(applied), lag)
        }
        false => (applied, Vec::new()),
    };
    let up = cluster.nodes.iter().filter(|n| n.up).count() as u64;
    let store = state.store.clone();
    let stats = tokio::task::spawn_blocking(move || crate::state::query::statistics(&store.view()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let seen = state.net.last_seen().await.map_err(|e| e.to_string())?;
    let now = crate::clock::monotonic();
    let connected = seen
        .values()
        .filter(|at| now.saturating_duration_since(**at) < PEER_RECENT)
        .count() as u64;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(Snapshot {
        term: cluster.term,
        role: state.raft.role(),
        last_log_index: last,
        commit_index,
        applied_index: applied,
        lag,
        processes: vec![
            ("waiting", count(stats.waitingprocesses)),
            ("running", count(stats.runningprocesses)),
            ("successful", count(stats.successfulprocesses)),
            ("failed", count(stats.failedprocesses)),
            ("cancelled", count(stats.cancelledprocesses)),
        ],
        workflows: vec![
            ("waiting", count(stats.waitingworkflows)),
            ("running", count(stats.runningworkflows)),
            ("successful", count(stats.successfulworkflows)),
            ("failed", count(stats.failedworkflows)),
            ("cancelled", count(stats.cancelledworkflows)),
        ],
        executors: vec![
            ("registered", count(stats.executors)),
            ("active", count(stats.activeexecutors)),
            ("unregistered", count(stats.unregisteredexecutors)),
        ],
        members_up: up,
        members_down: (cluster.nodes.len() as u64).saturating_sub(up),
        connected_peers: connected,
        waiters: state.waiters.live() as u64,
        bans_active: state.guard.bans_active(now),
    })
}
