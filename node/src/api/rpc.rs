//! `POST /api`: opens the envelope (size, JSON, signature, payload type) and dispatches the
//! request to its handler. Every failure becomes the ColonyOS error envelope with a 4xx/5xx.

use super::{
    blueprints, channels, colonies, crons, executors, files, functions, processes, status_of,
    workflows, ApiState, Signers,
};
use crate::guard::Side;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::Response;
use proto::envelope::EnvelopeError;
use proto::failures::ColonyosFailure;
use proto::{ApiError, ErrorCode, Request, RpcMsg, RpcReply};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::Instrument as _;

/// Numbers requests for their log span (per process; enough to tell lines apart).
static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

pub(super) async fn api(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = crate::clock::monotonic();
    let mut msgtype = String::new();
    let span = tracing::info_span!(
        "request",
        node = %state.node_name,
        id = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed),
        source = %peer.ip(),
        msgtype = tracing::field::Empty,
    );
    let handled = handle(&state, peer.ip(), body, &mut msgtype)
        .instrument(span.clone())
        .await;
    let (status, reply) = match handled {
        Ok((payloadtype, json)) => (StatusCode::OK, RpcReply::ok(&payloadtype, &json)),
        Err(error) => {
            let status = status_of(error.code);
            (status, RpcReply::failure(status.as_u16(), &error.message))
        }
    };
    let elapsed = started.elapsed();
    state
        .metrics
        .api_request(&msgtype, status.as_u16(), elapsed);
    span.in_scope(|| {
        let ms = elapsed.as_secs_f64() * 1000.0;
        tracing::debug!(status = status.as_u16(), ms, "answered");
    });
    super::reply_response(status, &reply)
}

/// The refusal of an envelope of `payloadtype` that cannot be opened; a payload that is not
/// its message gets ColonyOS's words for it.
fn envelope_error(payloadtype: &str, error: EnvelopeError) -> ApiError {
    let detail = error.to_string();
    match error {
        EnvelopeError::UnknownPayloadType(_) | EnvelopeError::Crypto(_) => {
            ApiError::new(ErrorCode::Forbidden, detail)
        }
        EnvelopeError::Json(_) | EnvelopeError::Fields { .. } => ColonyosFailure::InvalidJson {
            msgtype: payloadtype,
            detail: &detail,
        }
        .into(),
        EnvelopeError::MsgTypeMismatch { .. } => ColonyosFailure::MsgTypeMismatch {
            msgtype: payloadtype,
            detail: &detail,
        }
        .into(),
        EnvelopeError::Base64(_) | EnvelopeError::Utf8 => ApiError::bad_request(detail),
    }
}

/// Opens a request envelope: its JSON, the caller recovered from the signature (empty for
/// the unsigned types) and the payload of its type.
pub(super) fn open(signers: &Signers, body: &[u8]) -> Result<(String, Request), ApiError> {
    open_envelope(signers, body).map_err(|(error, _)| error)
}

/// As `open`; the flag on an error says whether it was a failed authentication (a signature
/// that does not verify), which counts toward a ban.
fn open_envelope(signers: &Signers, body: &[u8]) -> Result<(String, Request), (ApiError, bool)> {
    let msg: RpcMsg = serde_json::from_slice(body).map_err(|e| {
        let error = ApiError::bad_request(format!("malformed request envelope: {e}"));
        (error, false)
    })?;
    let caller = match Request::is_unsigned(&msg.payloadtype) {
        true => String::new(),
        false => signers
            .caller(&msg.payload, &msg.signature)
            .map_err(|error| {
                let error = envelope_error(&msg.payloadtype, EnvelopeError::Crypto(error));
                (error, true)
            })?,
    };
    let request = msg
        .request()
        .map_err(|error| (envelope_error(&msg.payloadtype, error), false))?;
    Ok((caller, request))
}

/// Answers one request from `source`; `msgtype` is set as soon as the envelope is read (for
/// metrics). Failed authentications are reported to the guard.
async fn handle(
    state: &ApiState,
    source: IpAddr,
    body: Result<Bytes, BytesRejection>,
    msgtype: &mut String,
) -> Result<(String, String), ApiError> {
    let outcome = handle_request(state, source, body, msgtype).await;
    if let Err((_, Some(caller))) = &outcome {
        // A refusal: it is a failed authentication when nobody in this mesh has the
        // caller's identity (a role missing for a known identity is an ordinary refusal).
        let view = state.store.view();
        let known =
            caller.is_empty() || crate::state::auth::is_known(&view, caller).unwrap_or(true);
        if !known {
            state
                .guard
                .failed(Side::Api, source, crate::clock::monotonic());
        }
    }
    outcome.map_err(|(error, _)| error)
}

/// The error carries, for a 403, the caller whose identity to check (empty for the
/// unsigned types). A signature that does not verify is reported to the guard here.
async fn handle_request(
    state: &ApiState,
    source: IpAddr,
    body: Result<Bytes, BytesRejection>,
    msgtype: &mut String,
) -> Result<(String, String), (ApiError, Option<String>)> {
    let plain = |error: ApiError| (error, None);
    let limited = |refusal: crate::guard::Refusal| {
        plain(ApiError::new(
            ErrorCode::TooManyRequests,
            refusal.to_string(),
        ))
    };
    let now = crate::clock::monotonic();
    let body = body.map_err(|rejection| {
        state.guard.rejected(Side::Api, source, now);
        plain(body_error(state, &rejection))
    })?;
    let (caller, request) = match open_envelope(&state.signers, &body) {
        Ok(opened) => opened,
        Err((error, true)) => {
            state.guard.failed(Side::Api, source, now);
            return Err(plain(error));
        }
        Err((error, false)) => {
            state.guard.rejected(Side::Api, source, now);
            return Err(plain(error));
        }
    };
    msgtype.push_str(request.msgtype());
    tracing::Span::current().record("msgtype", request.msgtype());
    // Limits: a signed request counts against its identity (however many share the source
    // address); an unsigned one against the source's anonymous budget.
    match caller.is_empty() {
        true => state.guard.anonymous(Side::Api, source, now),
        false => state.guard.identity(source, &caller, now),
    }
    .map_err(limited)?;
    // An assign may wait long: each identity has a bounded number of them waiting.
    let _slot = match request {
        Request::Assign(_) => Some(
            state
                .guard
                .long_poll(source, &caller, now)
                .map_err(limited)?,
        ),
        _ => None,
    };
    let forbidden = |error: ApiError| match error.code {
        ErrorCode::Forbidden => (error, Some(caller.clone())),
        _ => (error, None),
    };
    answer(state, &caller, request).await.map_err(forbidden)
}

fn body_error(state: &ApiState, rejection: &BytesRejection) -> ApiError {
    let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
    let limit = state.config.body_bytes_max;
    match too_large {
        true => ApiError::new(
            ErrorCode::TooLarge,
            format!("request body exceeds the limit of {limit} bytes"),
        ),
        false => ApiError::bad_request(format!("unreadable request body: {rejection}")),
    }
}

/// Dispatches an opened request from `caller`.
async fn answer(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<(String, String), ApiError> {
    if Request::is_subscription(request.msgtype()) {
        return Err(ApiError::bad_request(format!(
            "{} is served only over the WebSocket endpoint /pubsub",
            request.msgtype()
        )));
    }
    let payloadtype = request.msgtype().to_string();
    // The one reply ColonyOS sends under a payload type of its own.
    let payloadtype = match request {
        Request::GetPauseStatus(_) => "pausestatusreplymsg".to_string(),
        _ => payloadtype,
    };
    let json = match dispatch(state, caller, request.clone()).await {
        // The local replica may lag the writes a client made through another node: before
        // saying "not found" or "denied", catch up to the leader's commit index and look again.
        // Without a leader to ask (an election, a minority side) the answer cannot be
        // confirmed: 503, so the client retries instead of believing a stale "not found".
        Err(error) if may_lag(&request, &error) => match state.raft.linearize().await {
            Ok(()) => dispatch(state, caller, request).await?,
            Err(reason) => return Err(unconfirmed(&error, &reason.to_string())),
        },
        other => other?,
    };
    Ok((payloadtype, json))
}

/// A "not found" or "denied" this replica could not confirm with the leader.
pub(super) fn unconfirmed(error: &ApiError, reason: &str) -> ApiError {
    ApiError::unavailable(format!(
        "{} on this node's replica, which cannot confirm it with the leader: {reason}",
        error.message
    ))
}

/// True when `error` may come from this replica lagging behind writes made elsewhere: a read
/// that found nothing or no role, or an assign refused by the local membership pre-check.
/// Writes are decided on the leader and an assign that timed out has waited enough.
fn may_lag(request: &Request, error: &ApiError) -> bool {
    use Request as R;
    let read = matches!(
        request,
        R::GetColonies(_)
            | R::GetColony(_)
            | R::GetColonyStats(_)
            | R::GetStatistics(_)
            | R::GetExecutors(_)
            | R::GetExecutor(_)
            | R::GetExecutorById(_)
            | R::GetUsers(_)
            | R::GetUser(_)
            | R::GetUserById(_)
            | R::GetProcess(_)
            | R::GetProcesses(_)
            | R::GetProcessHist(_)
            | R::GetAttribute(_)
            | R::GetCluster(_)
            | R::GetProcessGraph(_)
            | R::GetProcessGraphs(_)
            | R::GetFunctions(_)
            | R::GetFunctionsByExecutor(_)
            | R::GetLogs(_)
            | R::SearchLogs(_)
            | R::GetLocations(_)
            | R::GetLocation(_)
            | R::GetPauseStatus(_)
            | R::GetCron(_)
            | R::GetCrons(_)
            | R::GetGenerator(_)
            | R::ResolveGenerator(_)
            | R::GetGenerators(_)
            | R::GetFile(_)
            | R::GetFiles(_)
            | R::GetFileLabels(_)
            | R::GetSnapshot(_)
            | R::GetSnapshots(_)
            | R::ChannelRead(_)
            | R::GetBlueprintDefinition(_)
            | R::GetBlueprintDefinitions(_)
            | R::GetBlueprint(_)
            | R::GetBlueprints(_)
            | R::GetBlueprintHistory(_)
    );
    match error.code {
        ErrorCode::NotFound => read,
        ErrorCode::Forbidden => read || matches!(request, R::Assign(_)),
        _ => false,
    }
}

async fn dispatch(state: &ApiState, caller: &str, request: Request) -> Result<String, ApiError> {
    use Request as R;
    match request {
        R::Version(_)
        | R::GetServerInfo(_)
        | R::GetStatistics(_)
        | R::GetCluster(_)
        | R::GetStateDigest(_)
        | R::GetBans(_)
        | R::GetDashboard(_)
        | R::RemoveBan(_) => colonies::server(state, caller, request).await,
        R::AddColony(_)
        | R::RemoveColony(_)
        | R::GetColonies(_)
        | R::GetColony(_)
        | R::GetColonyStats(_) => colonies::colony(state, caller, request).await,
        R::PauseAssignments(_)
        | R::ResumeAssignments(_)
        | R::GetPauseStatus(_)
        | R::ChangeColonyId(_)
        | R::ChangeServerId(_)
        | R::AddLocation(_)
        | R::RemoveLocation(_)
        | R::GetLocations(_)
        | R::GetLocation(_) => colonies::colony(state, caller, request).await,
        R::AddUser(_)
        | R::GetUsers(_)
        | R::GetUser(_)
        | R::GetUserById(_)
        | R::RemoveUser(_)
        | R::ChangeUserId(_) => colonies::user(state, caller, request).await,
        R::AddExecutor(_)
        | R::GetExecutors(_)
        | R::GetExecutor(_)
        | R::GetExecutorById(_)
        | R::ApproveExecutor(_)
        | R::RejectExecutor(_)
        | R::RemoveExecutor(_)
        | R::UpdateExecutor(_)
        | R::ReportAllocation(_)
        | R::ChangeExecutorId(_) => executors::handle(state, caller, request).await,
        R::AddFunction(_)
        | R::GetFunctions(_)
        | R::GetFunctionsByExecutor(_)
        | R::RemoveFunction(_)
        | R::AddLog(_)
        | R::AddExecutorLog(_)
        | R::GetLogs(_)
        | R::SearchLogs(_) => functions::handle(state, caller, request).await,
        R::Assign(msg) => processes::assign(state, caller, msg).await,
        R::Submit(_)
        | R::CloseSuccessful(_)
        | R::CloseFailed(_)
        | R::SetOutput(_)
        | R::CancelProcess(_)
        | R::RemoveProcess(_)
        | R::RemoveAllProcesses(_)
        | R::AddAttribute(_) => processes::write(state, caller, request).await,
        R::GetProcess(_) | R::GetProcesses(_) | R::GetProcessHist(_) | R::GetAttribute(_) => {
            processes::read(state, caller, request)
        }
        R::SubmitWorkflow(_)
        | R::RemoveProcessGraph(_)
        | R::RemoveAllProcessGraphs(_)
        | R::CancelProcessGraph(_)
        | R::AddChild(_) => workflows::write(state, caller, request).await,
        R::GetProcessGraph(_) | R::GetProcessGraphs(_) => workflows::read(state, caller, request),
        R::ChannelAppend(_) | R::ChannelRead(_) => channels::handle(state, caller, request).await,
        R::AddBlueprintDefinition(_)
        | R::GetBlueprintDefinition(_)
        | R::GetBlueprintDefinitions(_)
        | R::RemoveBlueprintDefinition(_)
        | R::AddBlueprint(_)
        | R::GetBlueprint(_)
        | R::GetBlueprints(_)
        | R::UpdateBlueprint(_)
        | R::RemoveBlueprint(_)
        | R::GetBlueprintHistory(_)
        | R::UpdateBlueprintStatus(_)
        | R::ReconcileBlueprint(_) => blueprints::handle(state, caller, request).await,
        R::AddFile(_)
        | R::GetFile(_)
        | R::GetFiles(_)
        | R::GetFileLabels(_)
        | R::RemoveFile(_)
        | R::CreateSnapshot(_)
        | R::GetSnapshot(_)
        | R::GetSnapshots(_)
        | R::RemoveSnapshot(_)
        | R::RemoveAllSnapshots(_) => files::handle(state, caller, request).await,
        R::SubscribeProcesses(_) | R::SubscribeProcess(_) | R::SubscribeChannel(_) => {
            unreachable!("subscriptions are refused before dispatch")
        }
        R::AddCron(_)
        | R::GetCron(_)
        | R::GetCrons(_)
        | R::RunCron(_)
        | R::RemoveCron(_)
        | R::AddGenerator(_)
        | R::GetGenerator(_)
        | R::ResolveGenerator(_)
        | R::GetGenerators(_)
        | R::PackGenerator(_)
        | R::RemoveGenerator(_) => crons::handle(state, caller, request).await,
    }
}
