//! Apply logic for process channels: ordered messages between a process's initiator and its
//! assigned executor, on the channels its spec declares. Each entry gets the next 1-based
//! index of its channel; readers ask for entries after an index.

use super::colonies::scan_all;
use super::keys::{self, Table};
use super::processes::{load, read_count};
use super::tx::{Direction, StateRead, StoreError};
use super::{auth, refuse_unless, Ctx, Event, Outcome};
use proto::channel::{MsgEntry, Payload};
use proto::command::Reply;
use proto::{ApiError, GoTime, Process};

/// Most entries one channel holds.
pub const CHANNEL_ENTRIES_MAX: i64 = 10_000;
/// Longest accepted message payload, in bytes.
pub const PAYLOAD_BYTES_MAX: usize = 64 * 1024;
/// Most entries one read returns.
pub const CHANNEL_READ_MAX: usize = 1000;

fn length_key(processid: &str, name: &str) -> Vec<u8> {
    keys::join(&[b"channel_len", processid.as_bytes(), name.as_bytes()])
}

fn entry_key(processid: &str, name: &str, index: i64) -> Vec<u8> {
    keys::join(&[
        processid.as_bytes(),
        name.as_bytes(),
        &keys::ordered_i64(index),
    ])
}

/// Refuses unless `caller` may use channel `name` of `p`: a member of its colony that is its
/// initiator or its assigned executor, on a channel its spec declares.
pub fn check_access<R: StateRead + ?Sized>(
    state: &R,
    p: &Process,
    name: &str,
    caller: &str,
) -> Outcome<()> {
    let colony = &p.spec.conditions.colonyname;
    refuse_unless!(auth::require_member(state, colony, caller, true)?);
    if p.initiatorid != caller && p.assignedexecutorid != caller {
        return Ok(Err(ApiError::forbidden(format!(
            "Access denied, only the initiator and the assigned executor of process {:?} use \
             its channels",
            p.processid
        ))));
    }
    if !p.spec.channels.iter().any(|c| c == name) {
        return Ok(Err(ApiError::not_found(format!(
            "process {:?} declares no channel named {name:?}",
            p.processid
        ))));
    }
    Ok(Ok(()))
}

pub(super) fn append<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    processid: &str,
    name: &str,
    entry: MsgEntry,
) -> Outcome<Reply> {
    if entry.payload.0.len() > PAYLOAD_BYTES_MAX {
        return Ok(Err(ApiError::bad_request(format!(
            "channel payload is {} bytes, longer than the limit of {PAYLOAD_BYTES_MAX}",
            entry.payload.0.len()
        ))));
    }
    if !matches!(entry.kind.as_str(), "" | "data" | "end" | "error") {
        return Ok(Err(ApiError::bad_request(format!(
            "channel payloadtype must be \"\", \"end\" or \"error\", not {:?}",
            entry.kind
        ))));
    }
    let p = refuse_unless!(load(ctx, processid)?);
    refuse_unless!(check_access(&ctx.tx, &p, name, ctx.caller())?);
    let length = read_count(&ctx.tx, &length_key(processid, name))?;
    if length >= CHANNEL_ENTRIES_MAX {
        return Ok(Err(ApiError::unavailable(format!(
            "channel {name:?} already holds {CHANNEL_ENTRIES_MAX} entries"
        ))));
    }
    let index = length + 1;
    let entry = MsgEntry {
        timestamp: GoTime::from_unix_nanos(ctx.now()),
        senderid: ctx.caller().to_string(),
        ..entry
    };
    ctx.put_json(Table::Channels, entry_key(processid, name, index), &entry);
    ctx.tx.put(
        Table::Meta,
        length_key(processid, name),
        index.to_le_bytes().to_vec(),
    );
    ctx.events.push(Event::ChannelAppended {
        processid: processid.to_string(),
        name: name.to_string(),
        index,
    });
    Ok(Ok(Reply::Done))
}

/// Deletes every channel entry of process `processid`.
pub(super) fn remove_of_process<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    processid: &str,
) -> Result<(), StoreError> {
    let prefix = keys::prefix(&[processid.as_bytes()]);
    for (key, _) in scan_all(ctx, Table::Channels, &prefix)? {
        ctx.tx.delete(Table::Channels, key);
    }
    let lengths = keys::prefix(&[b"channel_len", processid.as_bytes()]);
    for (key, _) in scan_all(ctx, Table::Meta, &lengths)? {
        ctx.tx.delete(Table::Meta, key);
    }
    Ok(())
}

/// Up to `limit` entries (0 or more than `CHANNEL_READ_MAX`: that many) after `after`,
/// with their indexes, in order.
pub fn read<R: StateRead + ?Sized>(
    state: &R,
    processid: &str,
    name: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, MsgEntry)>, StoreError> {
    let limit = match limit {
        0 => CHANNEL_READ_MAX,
        n => n.min(CHANNEL_READ_MAX),
    };
    let prefix = keys::prefix(&[processid.as_bytes(), name.as_bytes()]);
    let from = entry_key(processid, name, after.max(0));
    let entries = state.scan(
        Table::Channels,
        &prefix,
        Some(&from),
        Direction::Forward,
        limit,
    )?;
    entries
        .into_iter()
        .map(|(key, value)| {
            let index = keys::read_ordered_i64(&key, prefix.len())
                .ok_or_else(|| StoreError(format!("corrupt channel key {key:?}")))?;
            let entry = serde_json::from_slice(&value)
                .map_err(|e| StoreError(format!("corrupt channel entry: {e}")))?;
            Ok((index, entry))
        })
        .collect()
}

/// The payload bytes of an append as the entry stores them.
pub fn entry_of(sequence: i64, inreplyto: i64, payload: Vec<u8>, kind: &str) -> MsgEntry {
    MsgEntry {
        sequence,
        inreplyto,
        payload: Payload(payload),
        kind: kind.to_string(),
        ..MsgEntry::default()
    }
}
