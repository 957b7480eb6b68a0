//! Handlers for ColonyFS metadata: files, labels and snapshots.

use super::{checked, internal, json, reply_json, ApiState};
use crate::state::{auth, files, validate};
use proto::command::Op;
use proto::file::FileData;
use proto::{ApiError, Request};

pub(super) async fn handle(
    state: &ApiState,
    caller: &str,
    request: Request,
) -> Result<String, ApiError> {
    let view = state.store.view();
    let store = &view;
    let member = |colony: &str| checked(auth::require_member(store, colony, caller, true));
    let op = match request {
        Request::AddFile(msg) => Op::AddFile(Box::new(msg.file)),
        Request::RemoveFile(msg) => Op::RemoveFile {
            fileid: optional_id("fileid", &msg.fileid)?,
            colonyname: msg.colonyname,
            label: msg.label,
            name: msg.name,
        },
        Request::CreateSnapshot(msg) => Op::CreateSnapshot {
            colonyname: msg.colonyname,
            label: msg.label,
            name: msg.name,
        },
        Request::RemoveSnapshot(msg) => Op::RemoveSnapshot {
            snapshotid: optional_id("snapshotid", &msg.snapshotid)?,
            colonyname: msg.colonyname,
            name: msg.name,
        },
        Request::RemoveAllSnapshots(msg) => Op::RemoveAllSnapshots {
            colonyname: msg.colonyname,
        },
        Request::GetFile(msg) => {
            member(&msg.colonyname)?;
            let mut found = if msg.fileid.is_empty() {
                files::revisions(store, &msg.colonyname, &msg.label, &msg.name).map_err(internal)?
            } else {
                let id = validate::id("fileid", &msg.fileid)?;
                let file = files::by_id(store, &id).map_err(internal)?;
                file.filter(|f| f.colonyname == msg.colonyname)
                    .into_iter()
                    .collect()
            };
            if found.is_empty() {
                return Err(ApiError::not_found("file not found"));
            }
            // Newest revision first, as ColonyOS lists them; `latest`: only that one.
            found.reverse();
            if msg.latest {
                found.truncate(1);
            }
            return json(&found);
        }
        Request::GetFiles(msg) => {
            member(&msg.colonyname)?;
            // ColonyOS lists a label's files as `FileData` (name, checksum, size, S3 object).
            let found = files::latest_in_label(store, &msg.colonyname, &msg.label);
            let data: Vec<FileData> = found
                .map_err(internal)?
                .iter()
                .map(FileData::from)
                .collect();
            return json(&data);
        }
        Request::GetFileLabels(msg) => {
            member(&msg.colonyname)?;
            let found = files::labels(store, &msg.colonyname, &msg.name, msg.exact);
            return json(&found.map_err(internal)?);
        }
        Request::GetSnapshot(msg) => {
            member(&msg.colonyname)?;
            let id = optional_id("snapshotid", &msg.snapshotid)?;
            let found = files::snapshot(store, &msg.colonyname, &id, &msg.name);
            return match found.map_err(internal)? {
                Some(snapshot) => json(&snapshot),
                None => Err(ApiError::not_found("snapshot not found")),
            };
        }
        Request::GetSnapshots(msg) => {
            member(&msg.colonyname)?;
            return json(&files::snapshots(store, &msg.colonyname).map_err(internal)?);
        }
        other => unreachable!("{} is not a file request", other.msgtype()),
    };
    reply_json(state.propose(caller, op).await?)
}

/// An id that may be left out (then a name is used instead).
fn optional_id(field: &str, value: &str) -> Result<String, ApiError> {
    match value {
        "" => Ok(String::new()),
        id => validate::id(field, id),
    }
}
