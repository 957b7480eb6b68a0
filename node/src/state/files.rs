//! Apply logic for ColonyFS metadata: file revisions under labels (each add of a label and
//! name is its next revision) and snapshots, which record the newest revision of every file
//! of a label. Only metadata: the bytes stay in S3, as in ColonyOS.

use super::colonies::scan_all;
use super::keys::{self, Table};
use super::tx::{Direction, StateRead, StoreError};
use super::{auth, get_json, refuse_unless, validate, Ctx, Outcome};
use proto::command::Reply;
use proto::file::{normalize_label, File, Label, Snapshot};
use proto::{ApiError, GoTime};

/// Most revisions of one file kept; adding more refuses (remove old ones first).
pub const REVISIONS_MAX: usize = 10_000;
/// Most files one snapshot records.
pub const SNAPSHOT_FILES_MAX: usize = 10_000;

fn file_prefix(colony: &str, label: &str, name: &str) -> Vec<u8> {
    keys::prefix(&[colony.as_bytes(), label.as_bytes(), name.as_bytes()])
}

fn file_key(f: &File) -> Vec<u8> {
    let mut key = file_prefix(&f.colonyname, &f.label, &f.name);
    key.extend_from_slice(&keys::ordered_i64(f.sequencenr));
    key
}

fn label_key(colony: &str, label: &str) -> Vec<u8> {
    keys::join(&[colony.as_bytes(), label.as_bytes()])
}

/// Adds `delta` to the number of file names under a label (dropping labels at 0).
fn count_name<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    label: &str,
    delta: i64,
) -> Result<(), StoreError> {
    let key = label_key(colony, label);
    let count = match ctx.tx.get(Table::FileLabels, &key)? {
        Some(bytes) => decode_count(&bytes)?,
        None => 0,
    } + delta;
    if count > 0 {
        ctx.tx
            .put(Table::FileLabels, key, count.to_le_bytes().to_vec());
    } else {
        ctx.tx.delete(Table::FileLabels, key);
    }
    Ok(())
}

fn decode_count(bytes: &[u8]) -> Result<i64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError(format!("corrupt label counter {bytes:?}")))?;
    Ok(i64::from_le_bytes(array))
}

/// Every revision of a file, oldest first.
pub fn revisions<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    label: &str,
    name: &str,
) -> Result<Vec<File>, StoreError> {
    let prefix = file_prefix(colony, &normalize_label(label), name);
    let found = state.scan(
        Table::Files,
        &prefix,
        None,
        Direction::Forward,
        REVISIONS_MAX,
    )?;
    found
        .iter()
        .map(|(_, v)| super::colonies::decode(v))
        .collect()
}

/// The revision `id`, whatever colony it is in.
pub fn by_id<R: StateRead + ?Sized>(state: &R, id: &str) -> Result<Option<File>, StoreError> {
    match state.get(Table::FileIds, id.as_bytes())? {
        Some(key) => get_json(state, Table::Files, &key),
        None => Ok(None),
    }
}

pub(super) fn add<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, file: &File) -> Outcome<Reply> {
    let colony = &file.colonyname;
    refuse_unless!(auth::colony(&ctx.tx, colony)?);
    refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    refuse_unless!(validate::name("file.name", &file.name));
    let label = normalize_label(&file.label);
    refuse_unless!(validate::name("file.label", &label));
    let existing = revisions(&ctx.tx, colony, &label, &file.name)?;
    if existing.len() >= REVISIONS_MAX {
        return Ok(Err(ApiError::unavailable(format!(
            "file {:?} already has {REVISIONS_MAX} revisions",
            file.name
        ))));
    }
    let file = File {
        fileid: proto::crypto::sha3_hex(format!("{}/file", ctx.command.request_id).as_bytes()),
        label,
        sequencenr: existing.last().map_or(1, |f| f.sequencenr + 1),
        added: GoTime::from_unix_nanos(ctx.now()),
        ..file.clone()
    };
    if existing.is_empty() {
        count_name(ctx, colony, &file.label, 1)?;
    }
    let key = file_key(&file);
    ctx.tx.put(
        Table::FileIds,
        file.fileid.clone().into_bytes(),
        key.clone(),
    );
    ctx.put_json(Table::Files, key, &file);
    Ok(Ok(Reply::File(Box::new(file))))
}

fn delete<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, file: &File) -> Result<(), StoreError> {
    ctx.tx
        .delete(Table::FileIds, file.fileid.clone().into_bytes());
    ctx.tx.delete(Table::Files, file_key(file));
    let left = revisions(&ctx.tx, &file.colonyname, &file.label, &file.name)?;
    if left.is_empty() {
        count_name(ctx, &file.colonyname, &file.label, -1)?;
    }
    Ok(())
}

pub(super) fn remove<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    fileid: &str,
    label: &str,
    name: &str,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    let doomed = if fileid.is_empty() {
        revisions(&ctx.tx, colony, label, name)?
    } else {
        by_id(&ctx.tx, fileid)?
            .filter(|f| f.colonyname == colony)
            .into_iter()
            .collect()
    };
    if doomed.is_empty() {
        return Ok(Err(ApiError::not_found("file not found")));
    }
    for file in &doomed {
        delete(ctx, file)?;
    }
    Ok(Ok(Reply::Done))
}

/// The newest revision of every file directly under `label`, by name.
pub fn latest_in_label<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    label: &str,
) -> Result<Vec<File>, StoreError> {
    let prefix = keys::prefix(&[colony.as_bytes(), normalize_label(label).as_bytes()]);
    let all = state.scan(
        Table::Files,
        &prefix,
        None,
        Direction::Forward,
        SNAPSHOT_FILES_MAX,
    )?;
    let mut latest: Vec<File> = Vec::new();
    for (_, value) in all {
        let file: File = super::colonies::decode(&value)?;
        match latest.last_mut() {
            Some(last) if last.name == file.name => *last = file,
            _ => latest.push(file),
        }
    }
    Ok(latest)
}

/// Labels of `colony` as ColonyOS finds them: every label starting with `name` (all when
/// empty); with `exact`, the label `name` and the labels below it (`name/...`), or none when
/// `name` itself is no label.
pub fn labels<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    name: &str,
    exact: bool,
) -> Result<Vec<Label>, StoreError> {
    // "" and "/" mean every label.
    let label = match normalize_label(name) {
        root if root == "/" => String::new(),
        label => label,
    };
    let below = format!("{label}/");
    let wanted = |found: &str| match (label.is_empty(), exact) {
        (true, _) => true,
        (false, true) => found == label || found.starts_with(&below),
        (false, false) => found.starts_with(&label),
    };
    let mut prefix = keys::prefix(&[colony.as_bytes()]);
    let colony_prefix = prefix.len();
    prefix.extend_from_slice(label.as_bytes());
    let found = state.scan(
        Table::FileLabels,
        &prefix,
        None,
        Direction::Forward,
        super::query::LIST_OBJECTS_MAX,
    )?;
    let mut labels = Vec::new();
    for (key, value) in found {
        let found_label = String::from_utf8_lossy(&key[colony_prefix..]).into_owned();
        if wanted(&found_label) {
            labels.push(Label {
                name: found_label,
                files: decode_count(&value)?,
            });
        }
    }
    if exact && !label.is_empty() && !labels.iter().any(|l| l.name == label) {
        labels.clear();
    }
    Ok(labels)
}

fn snapshot_key(colony: &str, id: &str) -> Vec<u8> {
    keys::join(&[colony.as_bytes(), id.as_bytes()])
}

fn name_key(colony: &str, name: &str) -> Vec<u8> {
    keys::join(&[colony.as_bytes(), name.as_bytes()])
}

/// The snapshot `id` or (when `id` is empty) named `name` in `colony`.
pub fn snapshot<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    id: &str,
    name: &str,
) -> Result<Option<Snapshot>, StoreError> {
    let id = if id.is_empty() {
        match state.get(Table::SnapshotNames, &name_key(colony, name))? {
            Some(id) => String::from_utf8_lossy(&id).into_owned(),
            None => return Ok(None),
        }
    } else {
        id.to_string()
    };
    get_json(state, Table::Snapshots, &snapshot_key(colony, &id))
}

/// The snapshots of `colony`, newest first (as ColonyOS lists them).
pub fn snapshots<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
) -> Result<Vec<Snapshot>, StoreError> {
    let prefix = keys::prefix(&[colony.as_bytes()]);
    let mut found: Vec<Snapshot> = super::query::list_json(state, Table::Snapshots, &prefix)?;
    found.sort_by_key(|s| std::cmp::Reverse(s.added.unix_nanos().unwrap_or(0)));
    Ok(found)
}

pub(super) fn create_snapshot<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    label: &str,
    name: &str,
) -> Outcome<Reply> {
    refuse_unless!(auth::colony(&ctx.tx, colony)?);
    refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    refuse_unless!(validate::name("name", name));
    if ctx
        .tx
        .get(Table::SnapshotNames, &name_key(colony, name))?
        .is_some()
    {
        return Ok(Err(ApiError::conflict(format!(
            "snapshot with name {name:?} already exists"
        ))));
    }
    let files = latest_in_label(&ctx.tx, colony, label)?;
    let snapshot = Snapshot {
        snapshotid: proto::crypto::sha3_hex(
            format!("{}/snapshot", ctx.command.request_id).as_bytes(),
        ),
        colonyname: colony.to_string(),
        label: normalize_label(label),
        name: name.to_string(),
        fileids: files.into_iter().map(|f| f.fileid).collect(),
        added: GoTime::from_unix_nanos(ctx.now()),
    };
    ctx.tx.put(
        Table::SnapshotNames,
        name_key(colony, name),
        snapshot.snapshotid.clone().into_bytes(),
    );
    ctx.put_json(
        Table::Snapshots,
        snapshot_key(colony, &snapshot.snapshotid),
        &snapshot,
    );
    Ok(Ok(Reply::Snapshot(Box::new(snapshot))))
}

fn delete_snapshot<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, snapshot: &Snapshot) {
    let colony = &snapshot.colonyname;
    ctx.tx
        .delete(Table::SnapshotNames, name_key(colony, &snapshot.name));
    ctx.tx
        .delete(Table::Snapshots, snapshot_key(colony, &snapshot.snapshotid));
}

pub(super) fn remove_snapshot<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    id: &str,
    name: &str,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    let Some(snapshot) = snapshot(&ctx.tx, colony, id, name)? else {
        return Ok(Err(ApiError::not_found("snapshot not found")));
    };
    delete_snapshot(ctx, &snapshot);
    Ok(Ok(Reply::Done))
}

pub(super) fn remove_all_snapshots<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    delete_colony_snapshots(ctx, colony)?;
    Ok(Ok(Reply::Done))
}

fn delete_colony_snapshots<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
) -> Result<(), StoreError> {
    for (_, value) in scan_all(ctx, Table::Snapshots, &keys::prefix(&[colony.as_bytes()]))? {
        let snapshot: Snapshot = super::colonies::decode(&value)?;
        delete_snapshot(ctx, &snapshot);
    }
    Ok(())
}

/// Removes every file and snapshot of `colony`.
pub(super) fn remove_all<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
) -> Result<(), StoreError> {
    let prefix = keys::prefix(&[colony.as_bytes()]);
    for (key, value) in scan_all(ctx, Table::Files, &prefix)? {
        let file: File = super::colonies::decode(&value)?;
        ctx.tx.delete(Table::FileIds, file.fileid.into_bytes());
        ctx.tx.delete(Table::Files, key);
    }
    for (key, _) in scan_all(ctx, Table::FileLabels, &prefix)? {
        ctx.tx.delete(Table::FileLabels, key);
    }
    delete_colony_snapshots(ctx, colony)
}
