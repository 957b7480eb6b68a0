//! The web dashboard: static assets compiled into the binary (`/ui/`, no build step) and the
//! read-only JSON it renders (`/ui/api/...`), which answers only with the node's dashboard
//! key (`Authorization: Bearer KEY`). The key lives in `<data_dir>/dashboard.key`; the server
//! owner gets the page's address with it from `colonymesh dashboard` (`getdashboardmsg`).
//! A wrong key counts as a failed authentication toward a ban of its source.

use super::observe::cluster_view;
use super::ApiState;
use crate::guard::Side;
use crate::state::query::{self, LogSource, ProcessFilter};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use proto::process::process_state as ps;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

const INDEX: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");

/// Most rows one listing returns.
const ROWS_MAX: usize = 100;
/// Most log lines shown for one process.
const LOG_LINES_MAX: usize = 500;

/// `GET /ui/` and its assets. They hold no data: the page asks `/ui/api/` with the key.
pub(super) async fn asset(path: Option<Path<String>>) -> Response {
    let name = path.map(|Path(p)| p).unwrap_or_default();
    let (body, kind) = match name.as_str() {
        "" | "index.html" => (INDEX, "text/html; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    };
    let headers = [
        (header::CONTENT_TYPE, kind),
        // The page runs only its own script and talks only to this node.
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (headers, body).into_response()
}

/// Query parameters of the data endpoints.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Params {
    colony: Option<String>,
    id: Option<String>,
    /// `waiting`, `running`, `successful`, `failed`, or absent for all.
    state: Option<String>,
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message });
    (status, axum::Json(body)).into_response()
}

/// Constant-time comparison, so the key cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /ui/api/{what}`: `cluster`, `colonies`, `executors`, `processes`, `process`,
/// `workflows`, `workflow`.
pub(super) async fn data(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(what): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "the dashboard needs its key (colonymesh dashboard prints the address)",
            )
        }
        Some(key) if !same(key.as_bytes(), state.dashboard_key.as_bytes()) => {
            state
                .guard
                .failed(Side::Api, peer.ip(), crate::clock::monotonic());
            return json_error(StatusCode::UNAUTHORIZED, "wrong dashboard key");
        }
        Some(_) => {}
    }
    if what == "cluster" {
        return axum::Json(cluster_view(&state)).into_response();
    }
    let store = state.store.clone();
    let answer = tokio::task::spawn_blocking(move || read(&store, &what, &params)).await;
    match answer {
        Ok(Ok(value)) => axum::Json(value).into_response(),
        Ok(Err((status, message))) => json_error(status, &message),
        Err(error) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

type Answer = Result<serde_json::Value, (StatusCode, String)>;

fn state_of(name: Option<&str>) -> Result<Vec<i32>, (StatusCode, String)> {
    match name.unwrap_or("") {
        "" | "all" => Ok(vec![ps::RUNNING, ps::WAITING, ps::FAILED, ps::SUCCESS]),
        "waiting" => Ok(vec![ps::WAITING]),
        "running" => Ok(vec![ps::RUNNING]),
        "successful" => Ok(vec![ps::SUCCESS]),
        "failed" => Ok(vec![ps::FAILED]),
        other => Err((
            StatusCode::BAD_REQUEST,
            format!("unknown state {other:?} (waiting, running, successful, failed, all)"),
        )),
    }
}

fn to_json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

fn read(store: &crate::store::Store, what: &str, params: &Params) -> Answer {
    let internal = |e: crate::state::tx::StoreError| (StatusCode::INTERNAL_SERVER_ERROR, e.0);
    let view = store.view();
    let colony = || {
        params
            .colony
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or((StatusCode::BAD_REQUEST, "give ?colony=NAME".to_string()))
    };
    let id = || {
        params
            .id
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or((StatusCode::BAD_REQUEST, "give ?id=ID".to_string()))
    };
    match what {
        "colonies" => {
            let mut rows = Vec::new();
            for colony in query::colonies(&view).map_err(internal)? {
                let stats = query::colony_statistics(&view, &colony.name).map_err(internal)?;
                rows.push(serde_json::json!({ "colony": colony, "statistics": stats }));
            }
            Ok(serde_json::Value::Array(rows))
        }
        "executors" => {
            let executors = query::executors(&view, &colony()?).map_err(internal)?;
            Ok(to_json(&executors))
        }
        "processes" => {
            let colony = colony()?;
            let mut rows = Vec::new();
            for process_state in state_of(params.state.as_deref())? {
                let found = query::processes(
                    &view,
                    &colony,
                    process_state,
                    ROWS_MAX,
                    &ProcessFilter::default(),
                )
                .map_err(internal)?;
                rows.extend(found);
            }
            rows.sort_by_key(|row| std::cmp::Reverse(row.submissiontime));
            rows.truncate(ROWS_MAX);
            Ok(to_json(&rows))
        }
        "process" => {
            let id = id()?;
            let Some(process) = query::process(&view, &id).map_err(internal)? else {
                return Err((StatusCode::NOT_FOUND, format!("no process {id}")));
            };
            let logs = query::logs(&view, LogSource::Process(&id), LOG_LINES_MAX, 0, true)
                .map_err(internal)?;
            Ok(serde_json::json!({ "process": process, "logs": logs }))
        }
        "workflows" => {
            let colony = colony()?;
            let mut rows = Vec::new();
            for graph_state in state_of(params.state.as_deref())? {
                let found = query::process_graphs(&view, &colony, graph_state, ROWS_MAX)
                    .map_err(internal)?;
                rows.extend(found);
            }
            rows.sort_by_key(|row| std::cmp::Reverse(row.submissiontime));
            rows.truncate(ROWS_MAX);
            Ok(to_json(&rows))
        }
        "workflow" => {
            let id = id()?;
            let Some(graph) = query::process_graph(&view, &id).map_err(internal)? else {
                return Err((StatusCode::NOT_FOUND, format!("no workflow {id}")));
            };
            let mut processes = HashMap::new();
            for pid in &graph.processids {
                if let Some(p) = query::process(&view, pid).map_err(internal)? {
                    processes.insert(pid.clone(), p);
                }
            }
            Ok(serde_json::json!({ "graph": graph, "processes": processes }))
        }
        other => Err((
            StatusCode::NOT_FOUND,
            format!("no dashboard data {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_compare_in_full() {
        assert!(super::same(b"abc", b"abc"));
        assert!(!super::same(b"abc", b"abd"));
        assert!(!super::same(b"abc", b"ab"));
        assert!(!super::same(b"", b"a"));
    }
}
