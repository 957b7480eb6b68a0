//! `GET /pubsub`: realtime subscriptions over WebSocket (ColonyOS section e.5). The client
//! sends one signed envelope; the server answers with frames shaped like `/api` replies and
//! closes the socket when the subscription's `timeout` passes.
//!
//! ```text
//!   subscribeprocessmsg    one process reaching `state`: a frame at once if it is there,
//!                          else on the change; then close
//!   subscribeprocessesmsg  every process of `executortype` entering `state`, until timeout
//!   subscribechannelmsg    the channel's entries after `afterseq` as one array frame, then
//!                          each append as it comes; `[]` and close at the timeout
//! ```
//!
//! Unlike ColonyOS, both check that the caller is a member of the colony whose processes it
//! watches, and `subscribeprocessesmsg` only sees that colony.

use super::{checked, internal, rpc, ApiState};
use crate::sched::Subscription;
use crate::state::{auth, channels, query, Event};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use proto::msgs::{SubscribeChannelMsg, SubscribeProcessMsg, SubscribeProcessesMsg};
use proto::{ApiError, Process, Request, RpcReply};
use std::sync::Arc;
use std::time::Duration;

/// How long a new socket may take to send its subscription.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(10);
/// The payload type of every process frame, for both kinds of process subscriptions.
const PROCESS_FRAME: &str = "subscribeprocessmsg";

pub(super) async fn pubsub(
    State(state): State<Arc<ApiState>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let limit = state.config.body_bytes_max;
    upgrade
        .max_message_size(limit)
        .on_upgrade(move |socket| serve(state, socket))
}

async fn serve(state: Arc<ApiState>, mut socket: WebSocket) {
    let first = tokio::time::timeout(FIRST_FRAME_WAIT, socket.recv()).await;
    let body = match first {
        Ok(Some(Ok(Message::Text(text)))) => text.as_bytes().to_vec(),
        Ok(Some(Ok(Message::Binary(bytes)))) => bytes.to_vec(),
        _ => return, // closed, broken, or silent: nothing to answer
    };
    if let Err(error) = subscribe(&state, &body, &mut socket).await {
        let status = super::status_of(error.code).as_u16();
        let _ = send(&mut socket, &RpcReply::failure(status, &error.message)).await;
    }
    let _ = socket.send(Message::Close(None)).await;
}

async fn send(socket: &mut WebSocket, reply: &RpcReply) -> Result<(), axum::Error> {
    let text = serde_json::to_string(reply).expect("replies always serialize");
    socket.send(Message::Text(text.into())).await
}

/// A frame carrying `process`.
async fn send_process(socket: &mut WebSocket, process: &Process) -> Result<(), ApiError> {
    let json = super::json(process)?;
    send(socket, &RpcReply::ok(PROCESS_FRAME, &json))
        .await
        .map_err(|e| ApiError::bad_request(format!("subscriber went away: {e}")))
}

async fn subscribe(state: &ApiState, body: &[u8], socket: &mut WebSocket) -> Result<(), ApiError> {
    let (caller, request) = rpc::open(&state.signers, body)?;
    let deadline = |timeout: i64| {
        let seconds = u64::try_from(timeout)
            .unwrap_or(0)
            .min(state.config.long_poll_seconds_max);
        Duration::from_secs(seconds)
    };
    match request {
        Request::SubscribeProcess(msg) => {
            let until = deadline(msg.timeout);
            one_process(state, &caller, msg, until, socket).await
        }
        Request::SubscribeProcesses(msg) => {
            let until = deadline(msg.timeout);
            processes(state, &caller, msg, until, socket).await
        }
        Request::SubscribeChannel(msg) => {
            // ColonyOS: a timeout of 0 means 30 s.
            let until = deadline(if msg.timeout == 0 { 30 } else { msg.timeout });
            channel(state, &caller, msg, until, socket).await
        }
        other => Err(ApiError::bad_request(format!(
            "{} is not a subscription; send it to POST /api",
            other.msgtype()
        ))),
    }
}

fn open_subscription(state: &ApiState) -> Result<Subscription, ApiError> {
    let feed = state.waiters.feed();
    feed.subscribe()
        .map_err(|e| ApiError::unavailable(e.to_string()))
}

/// The process `id` if the caller is a member of its colony, catching up with the leader
/// before saying it does not exist (it may have been submitted through another node).
async fn member_process(state: &ApiState, caller: &str, id: &str) -> Result<Process, ApiError> {
    let process = super::process_caught_up(state, id).await?;
    let colony = &process.spec.conditions.colonyname;
    fresh(state, |view| {
        auth::require_member(view, colony, caller, true)
    })
    .await?;
    Ok(process)
}

/// A role check on the local replica; refused, it is decided again after catching up with
/// the leader (the caller may have been registered through another node a moment ago).
async fn fresh<T>(
    state: &ApiState,
    check: impl Fn(&crate::store::View) -> crate::state::Outcome<T>,
) -> Result<T, ApiError> {
    match checked(check(&state.store.view())) {
        Err(_) if state.raft.linearize().await.is_ok() => checked(check(&state.store.view())),
        other => other,
    }
}

async fn one_process(
    state: &ApiState,
    caller: &str,
    msg: SubscribeProcessMsg,
    until: Duration,
    socket: &mut WebSocket,
) -> Result<(), ApiError> {
    let expiry = tokio::time::sleep(until);
    tokio::pin!(expiry);
    // Subscribe before looking, so a change right after the look is not missed.
    let mut subscription = open_subscription(state)?;
    let process = member_process(state, caller, &msg.processid).await?;
    if process.state == msg.state {
        return send_process(socket, &process).await;
    }
    loop {
        let event = tokio::select! {
            event = subscription.next() => event,
            () = &mut expiry => return Ok(()),
            () = state.shutdown.clone().wait() => return Ok(()),
        };
        let relevant = match &event {
            Ok(event) => matches!(
                event.as_ref(),
                Event::ProcessChanged { processid, state, .. }
                    if *processid == process.processid && *state == msg.state
            ),
            // Behind: the change may be among the missed ones; the replica knows.
            Err(_) => true,
        };
        if !relevant {
            continue;
        }
        // The replica is at least as new as the event: read what it holds now.
        let now = query::process(&state.store.view(), &process.processid).map_err(internal)?;
        match now {
            Some(current) if current.state == msg.state => {
                return send_process(socket, &current).await;
            }
            Some(_) => {}
            None => {
                return Err(ApiError::not_found(format!(
                    "process with id {:?} was removed",
                    process.processid
                )));
            }
        }
        if let Err(missed) = event {
            subscription = open_subscription(state)?;
            tracing::debug!("process subscription resubscribed after: {missed}");
        }
    }
}

async fn processes(
    state: &ApiState,
    caller: &str,
    msg: SubscribeProcessesMsg,
    until: Duration,
    socket: &mut WebSocket,
) -> Result<(), ApiError> {
    let expiry = tokio::time::sleep(until);
    tokio::pin!(expiry);
    let colony = msg.colonyname.as_str();
    let mut subscription = open_subscription(state)?;
    fresh(state, |view| match auth::colony(view, colony)? {
        Ok(_) => auth::require_member(view, colony, caller, true),
        Err(refusal) => Ok(Err(refusal)),
    })
    .await?;
    loop {
        let event = tokio::select! {
            event = subscription.next() => event,
            () = &mut expiry => return Ok(()),
            () = state.shutdown.clone().wait() => return Ok(()),
        };
        let event = event.map_err(|missed| ApiError::unavailable(missed.to_string()))?;
        let Event::ProcessChanged {
            processid,
            colonyname,
            executortype,
            state: changed_to,
        } = event.as_ref()
        else {
            continue;
        };
        let wanted_type = msg.executortype.is_empty() || *executortype == msg.executortype;
        if colonyname != colony || !wanted_type || *changed_to != msg.state {
            continue;
        }
        let now = query::process(&state.store.view(), processid).map_err(internal)?;
        if let Some(current) = now {
            // The frame shows the process as it is now, which may be later than the event.
            send_process(socket, &current).await?;
        }
    }
}

/// The payload type of every channel frame.
const CHANNEL_FRAME: &str = "subscribechannelmsg";

async fn channel(
    state: &ApiState,
    caller: &str,
    msg: SubscribeChannelMsg,
    until: Duration,
    socket: &mut WebSocket,
) -> Result<(), ApiError> {
    let expiry = tokio::time::sleep(until);
    tokio::pin!(expiry);
    let mut subscription = open_subscription(state)?;
    let process = super::channels::channel_process(state, &msg.processid).await?;
    fresh(state, |view| {
        channels::check_access(view, &process, &msg.name, caller)
    })
    .await?;
    let mut after = msg.afterseq;
    loop {
        // Everything after the last index sent, from the replica (which also covers events
        // this subscriber fell behind on).
        let found = channels::read(&state.store.view(), &process.processid, &msg.name, after, 0);
        let found = found.map_err(internal)?;
        if let Some((last, _)) = found.last() {
            after = *last;
            let entries: Vec<_> = found.into_iter().map(|(_, entry)| entry).collect();
            let frame = RpcReply::ok(CHANNEL_FRAME, &super::json(&entries)?);
            send(socket, &frame)
                .await
                .map_err(|e| ApiError::bad_request(format!("subscriber went away: {e}")))?;
        }
        loop {
            let event = tokio::select! {
                event = subscription.next() => event,
                () = &mut expiry => {
                    let _ = send(socket, &RpcReply::ok(CHANNEL_FRAME, "[]")).await;
                    return Ok(());
                }
                () = state.shutdown.clone().wait() => return Ok(()),
            };
            let appended = match &event {
                Ok(event) => matches!(
                    event.as_ref(),
                    Event::ChannelAppended { processid, name, index }
                        if *processid == process.processid && *name == msg.name && *index > after
                ),
                Err(_) => {
                    subscription = open_subscription(state)?;
                    true
                }
            };
            if appended {
                break;
            }
        }
    }
}
