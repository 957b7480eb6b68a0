//! Apply logic for the server owner, colonies and users.

use super::keys::{self, Table};
use super::tx::{Direction, StateRead, StoreError};
use super::{auth, get_json, processes, refuse_unless, validate, Ctx, Outcome};
use proto::command::Reply;
use proto::failures::ColonyosFailure;
use proto::{ApiError, Colony, User};

/// Page size for scans that delete everything under a prefix.
const DELETE_PAGE: usize = 1024;

pub(super) fn init_server<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    server_id: &str,
) -> Outcome<Reply> {
    let server_id = refuse_unless!(validate::id("server id", server_id));
    if let Some(existing) = auth::server_id(&ctx.tx)? {
        return Ok(Ok(Reply::ServerId(existing)));
    }
    ctx.tx.put(
        Table::Meta,
        keys::SERVER_ID.to_vec(),
        server_id.clone().into_bytes(),
    );
    Ok(Ok(Reply::ServerId(server_id)))
}

pub(super) fn add_colony<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &Colony,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_server_owner(&ctx.tx, ctx.caller())?);
    refuse_unless!(validate::name("colony name", &colony.name));
    let colonyid = refuse_unless!(validate::id("colonyid", &colony.colonyid));
    if ctx
        .tx
        .get(Table::Colonies, colony.name.as_bytes())?
        .is_some()
    {
        let exists = ColonyosFailure::ColonyExists {
            colony: &colony.name,
        };
        return Ok(Err(exists.into()));
    }
    let colony = Colony {
        colonyid,
        name: colony.name.clone(),
    };
    ctx.put_json(Table::Colonies, colony.name.as_bytes().to_vec(), &colony);
    Ok(Ok(Reply::Colony(colony)))
}

pub(super) fn remove_colony<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    name: &str,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_server_owner(&ctx.tx, ctx.caller())?);
    refuse_unless!(auth::colony(&ctx.tx, name)?);
    super::blueprints::remove_all(ctx, name)?;
    super::crons::remove_all(ctx, name)?;
    super::files::remove_all(ctx, name)?;
    super::generators::remove_all(ctx, name)?;
    super::workflows::remove_matching(ctx, name, None)?;
    processes::remove_matching(ctx, name, None)?;
    let prefix = keys::prefix(&[name.as_bytes()]);
    for (key, value) in scan_all(ctx, Table::Executors, &prefix)? {
        let executor: proto::Executor = decode(&value)?;
        ctx.tx
            .delete(Table::ExecutorIds, executor.executorid.into_bytes());
        ctx.tx.delete(Table::Executors, key);
    }
    for (key, value) in scan_all(ctx, Table::Users, &prefix)? {
        let user: User = decode(&value)?;
        ctx.tx.delete(
            Table::UserIds,
            keys::join(&[user.userid.as_bytes(), name.as_bytes()]),
        );
        ctx.tx.delete(Table::Users, key);
    }
    for (key, value) in scan_all(ctx, Table::Functions, &prefix)? {
        let function: proto::Function = decode(&value)?;
        ctx.tx
            .delete(Table::FunctionIds, function.functionid.into_bytes());
        ctx.tx.delete(Table::Functions, key);
    }
    for (key, value) in scan_all(ctx, Table::LogsByTime, &prefix)? {
        let log: proto::Log = decode(&value)?;
        super::logs::remove_line(ctx, &key, &log);
    }
    for table in [Table::ExecutorLogs, Table::Locations] {
        for (key, _) in scan_all(ctx, table, &prefix)? {
            ctx.tx.delete(table, key);
        }
    }
    ctx.tx.delete(Table::Meta, keys::paused(name));
    ctx.tx.delete(Table::Colonies, name.as_bytes().to_vec());
    Ok(Ok(Reply::Done))
}

pub(super) fn set_paused<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    paused: bool,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_colony_owner(&ctx.tx, colony, ctx.caller())?);
    if paused {
        ctx.tx.put(Table::Meta, keys::paused(colony), Vec::new());
    } else {
        ctx.tx.delete(Table::Meta, keys::paused(colony));
        ctx.events.push(super::Event::Resumed {
            colonyname: colony.to_string(),
        });
    }
    Ok(Ok(Reply::Done))
}

/// True while assignments in `colony` are paused.
pub fn is_paused<R: StateRead + ?Sized>(state: &R, colony: &str) -> Result<bool, StoreError> {
    Ok(state.get(Table::Meta, &keys::paused(colony))?.is_some())
}

pub(super) fn change_colony_id<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    new_id: &str,
) -> Outcome<Reply> {
    let mut record = refuse_unless!(auth::require_colony_owner(&ctx.tx, colony, ctx.caller())?);
    record.colonyid = refuse_unless!(validate::id("colonyid", new_id));
    ctx.put_json(Table::Colonies, colony.as_bytes().to_vec(), &record);
    Ok(Ok(Reply::Done))
}

pub(super) fn change_server_id<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    new_id: &str,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_server_owner(&ctx.tx, ctx.caller())?);
    let new_id = refuse_unless!(validate::id("serverid", new_id));
    ctx.tx
        .put(Table::Meta, keys::SERVER_ID.to_vec(), new_id.into_bytes());
    Ok(Ok(Reply::Done))
}

pub(super) fn change_user_id<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    new_id: &str,
) -> Outcome<Reply> {
    let new_id = refuse_unless!(validate::id("userid", new_id));
    let member = refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), false)?);
    let auth::Member::User(mut user) = member else {
        return Ok(Err(ApiError::forbidden(
            "Access denied, only users change their user id",
        )));
    };
    if auth::user_by_id(&ctx.tx, colony, &new_id)?.is_some() {
        return Ok(Err(ApiError::conflict(
            "a user with this userid already exists",
        )));
    }
    ctx.tx.delete(
        Table::UserIds,
        keys::join(&[user.userid.as_bytes(), colony.as_bytes()]),
    );
    user.userid = new_id;
    ctx.tx.put(
        Table::UserIds,
        keys::join(&[user.userid.as_bytes(), colony.as_bytes()]),
        user.name.clone().into_bytes(),
    );
    let key = keys::join(&[colony.as_bytes(), user.name.as_bytes()]);
    ctx.put_json(Table::Users, key, &user);
    Ok(Ok(Reply::Done))
}

pub(super) fn add_user<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, user: &User) -> Outcome<Reply> {
    refuse_unless!(auth::require_colony_owner(
        &ctx.tx,
        &user.colonyname,
        ctx.caller()
    )?);
    refuse_unless!(validate::name("user name", &user.name));
    let userid = refuse_unless!(validate::id("userid", &user.userid));
    let key = keys::join(&[user.colonyname.as_bytes(), user.name.as_bytes()]);
    if ctx.tx.get(Table::Users, &key)?.is_some() {
        let exists = ColonyosFailure::UserExists {
            user: &user.name,
            colony: &user.colonyname,
        };
        return Ok(Err(exists.into()));
    }
    let id_key = keys::join(&[userid.as_bytes(), user.colonyname.as_bytes()]);
    if ctx.tx.get(Table::UserIds, &id_key)?.is_some() {
        return Ok(Err(ApiError::conflict(
            "a user with this userid already exists in colony",
        )));
    }
    let user = User {
        userid,
        ..user.clone()
    };
    ctx.put_json(Table::Users, key, &user);
    ctx.tx
        .put(Table::UserIds, id_key, user.name.clone().into_bytes());
    Ok(Ok(Reply::User(user)))
}

pub(super) fn remove_user<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    name: &str,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_colony_owner(&ctx.tx, colony, ctx.caller())?);
    let key = keys::join(&[colony.as_bytes(), name.as_bytes()]);
    let Some(user) = get_json::<User, _>(&ctx.tx, Table::Users, &key)? else {
        return Ok(Err(ApiError::not_found(format!(
            "user with name {name:?} not found"
        ))));
    };
    ctx.tx.delete(
        Table::UserIds,
        keys::join(&[user.userid.as_bytes(), colony.as_bytes()]),
    );
    ctx.tx.delete(Table::Users, key);
    Ok(Ok(Reply::Done))
}

/// Every entry under `prefix`, paged so no single scan is unbounded.
pub(super) fn scan_all<R: StateRead + ?Sized>(
    ctx: &Ctx<'_, R>,
    table: Table,
    prefix: &[u8],
) -> Result<Vec<super::tx::Entry>, super::tx::StoreError> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map(|(key, _): &super::tx::Entry| key.clone());
        let page = ctx.tx.scan(
            table,
            prefix,
            after.as_deref(),
            Direction::Forward,
            DELETE_PAGE,
        )?;
        let done = page.len() < DELETE_PAGE;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, super::tx::StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| super::tx::StoreError(format!("corrupt state value: {e}")))
}
