//! The ColonyOS HTTP API: the one place that imports `axum`. `POST /api` takes the signed
//! envelope, `GET /pubsub` serves realtime subscriptions over WebSocket; `GET /health`,
//! `/ready` and `/metrics` are for operators (`observe`). This is the user boundary: input
//! is checked here and turned into reads of local state or commands proposed through raft.
//!
//! ```text
//!   POST /api --> rpc::handle: size limit, envelope, signature -> caller id, msgtype check
//!             --> colonies / executors / processes: role checks, reads, raft::propose
//!             <-- RpcReply (payload Base64 JSON), HTTP status from `status_of`
//! ```

pub mod backup;
mod blueprints;
mod channels;
mod colonies;
mod crons;
mod dashboard;
mod executors;
mod files;
mod functions;
mod observe;
mod processes;
mod pubsub;
mod rpc;
mod signers;
mod tls;
mod workflows;

use crate::clock::Clock;
use crate::config::ApiConfig;
use crate::guard::{Refusal, Side};
use crate::raft::{self, RaftNode};
use crate::sched::Waiters;
use crate::state::tx::StoreError;
use crate::store::Store;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::Router;
use proto::command::{Command, Op, Reply};
use proto::failures::ColonyosFailure;
use proto::{ApiError, ErrorCode};
use std::net::SocketAddr;
use std::sync::Arc;

pub use signers::Signers;

/// Build facts reported by `versionmsg` and `getserverinfomsg`.
pub const BUILD_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What every handler needs; shared by all requests.
pub struct ApiState {
    /// Local replica for reads.
    pub store: Store,
    /// Where writes are proposed.
    pub raft: RaftNode,
    /// Long-poll registry, woken by applied commands.
    pub waiters: Arc<Waiters>,
    /// Time and request ids for proposed commands.
    pub clock: Arc<dyn Clock>,
    pub config: ApiConfig,
    /// Fires when the node stops; long-polls end early on it so shutdown never waits for them.
    pub shutdown: crate::shutdown::Signal,
    /// This node's mesh name (reported by `getclustermsg`).
    pub node_name: String,
    /// Statuses of mesh members heard by gossip (health in `getclustermsg`).
    pub fleet: Arc<crate::mesh::status::Fleet>,
    /// A member not heard by gossip for this long is reported down.
    pub status_down: std::time::Duration,
    /// The address clients reach this API at (reported by `getserverinfomsg`).
    pub advertised_host: String,
    pub advertised_port: u16,
    /// This node's metrics, served on `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The mesh network (peers heard from lately, for metrics).
    pub net: crate::net::Client,
    /// Per-source bans and limits (shared with the mesh side).
    pub guard: Arc<crate::guard::Guard>,
    /// The key the dashboard's data endpoints require (`<data_dir>/dashboard.key`).
    pub dashboard_key: String,
    /// Recent callers by (payload digest, signature): an identical envelope skips recovery.
    pub signers: signers::Signers,
    /// The node's built-in executors (`/ready` waits for their registration).
    pub executors: crate::exec::Executors,
}

/// The single table from error kinds to HTTP status codes.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Timeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The router with every endpoint.
pub fn router(state: Arc<ApiState>) -> Router {
    let body_limit = state.config.body_bytes_max;
    Router::new()
        .route("/api", post(rpc::api))
        .route("/pubsub", get(pubsub::pubsub))
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/ready", get(observe::ready))
        .route("/metrics", get(observe::metrics))
        .route("/backup", get(backup::backup))
        // An operator who opens the node's address in a browser lands on the dashboard (which
        // says how to get its key when none is given); temporary, so that `/` stays free.
        .route(
            "/",
            get(|| async { axum::response::Redirect::temporary("/ui/") }),
        )
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::permanent("/ui/") }),
        )
        .route("/ui/", get(dashboard::asset))
        .route("/ui/{file}", get(dashboard::asset))
        .route("/ui/api/{what}", get(dashboard::data))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), admit))
        .with_state(state)
}

/// Every request passes here first: a banned source, or one over its request rate, is
/// refused before anything else is read.
async fn admit(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match state
        .guard
        .admit(Side::Api, peer.ip(), crate::clock::monotonic())
    {
        Ok(()) => next.run(request).await,
        Err(refusal) => refused(&refusal),
    }
}

/// The ColonyOS error envelope for a guard refusal: 403 for a ban, 429 for a limit.
fn refused(refusal: &Refusal) -> Response {
    let status = match refusal.retry_after_seconds() {
        None => StatusCode::FORBIDDEN,
        Some(_) => StatusCode::TOO_MANY_REQUESTS,
    };
    failure_response(status, &refusal.to_string())
}

/// Seconds a client refused with 429 should wait before trying again (`Retry-After`): the
/// limits refill within a second.
const RETRY_AFTER_SECONDS: u64 = 1;

/// An HTTP response carrying a ColonyOS reply envelope with `status`; every 429 says when to
/// try again (`Retry-After`).
fn reply_response(status: StatusCode, reply: &proto::RpcReply) -> Response {
    let text = serde_json::to_string(reply).expect("replies always serialize");
    let content_type = (
        axum::http::header::CONTENT_TYPE,
        "text/plain; charset=utf-8",
    );
    let mut response = (status, [content_type], text).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(RETRY_AFTER_SECONDS),
        );
    }
    response
}

/// The ColonyOS error envelope (`Failure{status, message}`) with the same HTTP status.
fn failure_response(status: StatusCode, message: &str) -> Response {
    reply_response(status, &proto::RpcReply::failure(status.as_u16(), message))
}

/// Serves the API on `listener` until `shutdown` completes. Cancel-safe only by `shutdown`.
/// With `tls`, every connection is TLS (HTTPS and WSS); handshakes run on their own tasks.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<crate::tls::ServerTls>,
    state: Arc<ApiState>,
    shutdown: crate::shutdown::Signal,
) -> std::io::Result<()> {
    let service = router(state).into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown.wait())
                .await
        }
        Some(tls) => {
            // `tap_io` only wraps the listener in the type axum derives `ConnectInfo` for.
            let listener = tls::TlsListener::start(listener, tls, shutdown.clone()).tap_io(|_| {});
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown.wait())
                .await
        }
    }
}

/// A store failure seen while serving: reported as a 500, logged where handled.
fn internal(error: StoreError) -> ApiError {
    tracing::error!("failed to read state: {error}");
    ApiError::internal(format!("internal error: {error}"))
}

/// Turns a read-side role check into the handler's result.
fn checked<T>(outcome: Result<Result<T, ApiError>, StoreError>) -> Result<T, ApiError> {
    outcome.map_err(internal)?
}

/// The process `id` from the local replica, catching up with the leader before saying it
/// does not exist (it may have been submitted through another node a moment ago).
async fn process_caught_up(state: &ApiState, id: &str) -> Result<proto::Process, ApiError> {
    let read = || crate::state::query::process(&state.store.view(), id).map_err(internal);
    let not_found = || ApiError::not_found(format!("process with id {id:?} not found"));
    if let Some(process) = read()? {
        return Ok(process);
    }
    match state.raft.linearize().await {
        Ok(()) => read()?.ok_or_else(not_found),
        Err(reason) => Err(rpc::unconfirmed(&not_found(), &reason.to_string())),
    }
}

/// A listing's `count` as a size, refused above `max` (ColonyOS's limits); negative is 0.
fn bounded_count(count: i64, max: usize) -> Result<usize, ApiError> {
    let count = usize::try_from(count).unwrap_or(0);
    if count > max {
        return Err(ApiError::bad_request(format!(
            "count {count} exceeds the limit of {max}"
        )));
    }
    Ok(count)
}

/// JSON text of a reply object.
fn json<T: serde::Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::internal(format!("encode reply: {e}")))
}

impl ApiState {
    /// Proposes `op` on behalf of `caller` and waits for it to be committed and applied.
    async fn propose(&self, caller: &str, op: Op) -> Result<Reply, ApiError> {
        let command = Command {
            now_nanos: self.clock.now_nanos(),
            request_id: self.clock.request_id(),
            caller_id: caller.to_string(),
            op,
        };
        match self.raft.propose(command).await {
            Ok(response) => response.0,
            Err(raft::Error::NotLeader { leader }) => Err(ApiError::unavailable(format!(
                "this node cannot accept writes now: no leader reachable (known leader {leader:?})"
            ))),
            Err(error) => {
                tracing::error!("failed to propose: {error}");
                Err(ApiError::unavailable(format!("write failed: {error}")))
            }
        }
    }
}

/// The JSON a successful write returns.
fn reply_json(reply: Reply) -> Result<String, ApiError> {
    match reply {
        Reply::Done | Reply::ServerId(_) | Reply::Expired(_) => Ok("{}".to_string()),
        Reply::Colony(colony) => json(&colony),
        Reply::Executor(executor) => json(&executor),
        Reply::User(user) => json(&user),
        Reply::Process(process) => json(&process),
        Reply::Attribute(attribute) => json(&attribute),
        Reply::ProcessGraph(graph) => json(&graph),
        Reply::Function(function) => json(&function),
        Reply::Location(location) => json(&location),
        Reply::Cron(cron) => json(&cron),
        Reply::BlueprintDefinition(definition) => json(&definition),
        Reply::Blueprint(blueprint) => json(&blueprint),
        Reply::File(file) => json(&file),
        Reply::Snapshot(snapshot) => json(&snapshot),
        Reply::Generator(generator) => json(&generator),
        Reply::NothingToAssign => Err(no_process()),
        Reply::AssignmentsPaused => Err(ColonyosFailure::Paused.into()),
    }
}

/// ColonyOS's answer when an assign finds nothing (clients match on this text).
fn no_process() -> ApiError {
    ColonyosFailure::NoProcess.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every failure ColonyOS also has, with example names as in `docs/colonyos-failures.md`.
    fn every() -> Vec<ColonyosFailure<'static>> {
        use ColonyosFailure as F;
        let all = vec![
            F::NotServerOwner,
            F::NotColonyOwner,
            F::NotMember { colony: "dev" },
            F::NoSuchColony { colony: "dev" },
            F::NoProcess,
            F::ProcessNotFound,
            F::Paused,
            F::PausedTimeout,
            F::ColonyExists { colony: "dev" },
            F::ExecutorExists {
                executor: "worker",
                colony: "dev",
            },
            F::UserExists {
                user: "alice",
                colony: "dev",
            },
        ];
        // A new kind of failure does not compile here until it is listed above.
        for failure in &all {
            match failure {
                F::NotServerOwner
                | F::NotColonyOwner
                | F::NotMember { .. }
                | F::NoSuchColony { .. }
                | F::NoProcess
                | F::ProcessNotFound
                | F::Paused
                | F::PausedTimeout
                | F::ColonyExists { .. }
                | F::ExecutorExists { .. }
                | F::UserExists { .. } => {}
                // Checked by `malformed_payloads_are_refused_in_colonyos_words`.
                F::InvalidJson { .. } | F::MsgTypeMismatch { .. } => {}
            }
        }
        all
    }

    /// The cells of every table row of `docs/colonyos-failures.md` (code quotes taken off),
    /// from the leading empty cell on: in the failures table the third cell is ColonyOS's
    /// status, in the malformed-payload table a text.
    fn document_rows() -> Vec<Vec<String>> {
        include_str!("../../../docs/colonyos-failures.md")
            .lines()
            .filter(|line| line.starts_with('|'))
            .map(|line| {
                let cells = line.split('|').map(|c| c.trim().trim_matches('`'));
                cells.map(str::to_string).collect::<Vec<_>>()
            })
            .filter(|cells| cells.len() > 3)
            .collect()
    }

    /// - every message type's texts for a malformed payload are ColonyOS's handler's, as the
    ///   document quotes them, each followed by what was wrong; status 400
    #[test]
    fn malformed_payloads_are_refused_in_colonyos_words() {
        let rows: Vec<Vec<String>> = document_rows()
            .into_iter()
            .filter(|cells| cells[1].ends_with("msg") && cells[2].parse::<u16>().is_err())
            .collect();
        assert_eq!(rows.len(), proto::failures::MALFORMED.len());
        for (msgtype, invalid, mismatch) in proto::failures::MALFORMED {
            let row = rows.iter().find(|r| r[1] == *msgtype);
            let row = row.unwrap_or_else(|| panic!("{msgtype} is not in the document"));
            assert_eq!((row[2].as_str(), row[3].as_str()), (*invalid, *mismatch));
            let failure = ColonyosFailure::InvalidJson {
                msgtype,
                detail: "x",
            };
            assert_eq!(failure.message(), format!("{invalid}: x"));
            assert_eq!(status_of(failure.code()), StatusCode::BAD_REQUEST);
            let failure = ColonyosFailure::MsgTypeMismatch {
                msgtype,
                detail: "x",
            };
            assert_eq!(failure.message(), format!("{mismatch}: x"));
        }
        // Our own types follow the same shape.
        let (invalid, _) = proto::failures::malformed("getbansmsg");
        assert_eq!(invalid, "Failed to handle getbansmsg, invalid JSON");
    }

    /// (ColonyOS status, ColonyOS text with the example names) of each row of the failures
    /// table of the document.
    fn documented() -> Vec<(u16, String)> {
        document_rows()
            .into_iter()
            .filter_map(|cells| {
                let status = cells[2].parse().ok()?;
                let text = cells[3]
                    .replace("{colony}", "dev")
                    .replace("{executor}", "worker")
                    .replace("{user}", "alice");
                Some((status, text))
            })
            .collect()
    }

    /// - each failure ColonyOS also has is sent in ColonyOS's words, with ColonyOS's status,
    ///   except where the status differs on purpose ("already exists": 409, not 400)
    #[test]
    fn colonyos_failures_match_the_document() {
        let documented = documented();
        assert_eq!(documented.len(), every().len(), "{documented:?}");
        for failure in every() {
            let text = failure.message();
            let Some((colonyos_status, _)) = documented.iter().find(|(_, t)| *t == text) else {
                panic!("{failure:?}: {text:?} is not in docs/colonyos-failures.md");
            };
            let ours = status_of(failure.code()).as_u16();
            let deliberate = matches!(
                failure,
                ColonyosFailure::ColonyExists { .. }
                    | ColonyosFailure::ExecutorExists { .. }
                    | ColonyosFailure::UserExists { .. }
            );
            match deliberate {
                true => assert_eq!((ours, *colonyos_status), (409, 400), "{failure:?}"),
                false => assert_eq!(ours, *colonyos_status, "{failure:?}"),
            }
        }
    }
}
