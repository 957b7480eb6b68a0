//! Handlers for process channels: append and read (subscriptions are in `pubsub`).

use super::{checked, internal, json, reply_json, ApiState};
use crate::state::{channels, validate};
use proto::command::Op;
use proto::{ApiError, Process, Request};

/// The process `id` of a channel request (checked to be an id), as `process_caught_up`.
pub(super) async fn channel_process(state: &ApiState, id: &str) -> Result<Process, ApiError> {
    super::process_caught_up(state, &validate::id("processid", id)?).await
}

pub(super) async fn handle(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<String, ApiError> {
    match request {
        Request::ChannelAppend(msg) => {
            let op = Op::ChannelAppend {
                processid: validate::id("processid", &msg.processid)?,
                name: msg.name,
                sequence: msg.sequence,
                inreplyto: msg.inreplyto,
                payload: msg.payload.0,
                payloadtype: msg.payloadtype,
            };
            reply_json(state.propose(caller, op).await?)
        }
        Request::ChannelRead(msg) => {
            let process = channel_process(state, &msg.processid).await?;
            let view = state.store.view();
            checked(channels::check_access(&view, &process, &msg.name, caller))?;
            let limit = usize::try_from(msg.limit).unwrap_or(0);
            let found = channels::read(&view, &process.processid, &msg.name, msg.afterseq, limit);
            let entries: Vec<_> = found
                .map_err(internal)?
                .into_iter()
                .map(|(_, e)| e)
                .collect();
            json(&entries)
        }
        other => unreachable!("{} is not a channel request", other.msgtype()),
    }
}
