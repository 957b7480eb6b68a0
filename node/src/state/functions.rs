//! Apply logic for the function registry: executors register the functions they offer, and
//! every successful run of a function updates its wait and execution statistics.

use super::keys::{self, Table};
use super::tx::{StateRead, StoreError};
use super::{auth, get_json, refuse_unless, validate, Ctx, Outcome};
use proto::command::Reply;
use proto::{ApiError, Function, Process};

fn key(colony: &str, executorname: &str, funcname: &str) -> Vec<u8> {
    keys::join(&[
        colony.as_bytes(),
        executorname.as_bytes(),
        funcname.as_bytes(),
    ])
}

pub(super) fn add<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    function: &Function,
) -> Outcome<Reply> {
    let colony = &function.colonyname;
    refuse_unless!(validate::name("fun.funcname", &function.funcname));
    refuse_unless!(auth::colony(&ctx.tx, colony)?);
    let member = refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    let auth::Member::Executor(executor) = member else {
        return Ok(Err(ApiError::forbidden(
            "Access denied, only executors register functions",
        )));
    };
    if executor.executorname != function.executorname {
        return Ok(Err(ApiError::forbidden(format!(
            "Access denied, caller is executor {:?}, not {:?}",
            executor.executorname, function.executorname
        ))));
    }
    let key = key(colony, &executor.executorname, &function.funcname);
    if ctx.tx.get(Table::Functions, &key)?.is_some() {
        return Ok(Err(ApiError::conflict(format!(
            "function {:?} of executor {:?} already exists",
            function.funcname, executor.executorname
        ))));
    }
    let functionid = if function.functionid.is_empty() {
        proto::crypto::sha3_hex(format!("{}/function", ctx.command.request_id).as_bytes())
    } else {
        refuse_unless!(validate::id("fun.functionid", &function.functionid))
    };
    if ctx
        .tx
        .get(Table::FunctionIds, functionid.as_bytes())?
        .is_some()
    {
        return Ok(Err(ApiError::conflict(
            "a function with this functionid already exists",
        )));
    }
    let function = Function {
        functionid,
        executortype: executor.executortype.clone(),
        locationname: executor.locationname.clone(),
        counter: 0,
        minwaittime: 0.0,
        maxwaittime: 0.0,
        minexectime: 0.0,
        maxexectime: 0.0,
        avgwaittime: 0.0,
        avgexectime: 0.0,
        ..function.clone()
    };
    ctx.put_json(Table::Functions, key.clone(), &function);
    ctx.tx
        .put(Table::FunctionIds, function.functionid.clone().into(), key);
    Ok(Ok(Reply::Function(Box::new(function))))
}

pub(super) fn remove<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, id: &str) -> Outcome<Reply> {
    let Some(key) = ctx.tx.get(Table::FunctionIds, id.as_bytes())? else {
        return Ok(Err(ApiError::not_found(format!(
            "function with id {id:?} not found"
        ))));
    };
    let function: Function = get_json(&ctx.tx, Table::Functions, &key)?
        .ok_or_else(|| StoreError(format!("function id {id} names a missing function")))?;
    let colony = &function.colonyname;
    let member = refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    let owner =
        matches!(&member, auth::Member::Executor(e) if e.executorname == function.executorname);
    if !owner {
        return Ok(Err(ApiError::forbidden(
            "Access denied, only the executor that registered a function removes it",
        )));
    }
    ctx.tx.delete(Table::FunctionIds, id.as_bytes().to_vec());
    ctx.tx.delete(Table::Functions, key);
    Ok(Ok(Reply::Done))
}

/// Removes every function `executorname` registered in `colony`.
pub(super) fn remove_of_executor<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    executorname: &str,
) -> Result<(), StoreError> {
    let prefix = keys::prefix(&[colony.as_bytes(), executorname.as_bytes()]);
    for (key, value) in super::colonies::scan_all(ctx, Table::Functions, &prefix)? {
        let function: Function = super::colonies::decode(&value)?;
        ctx.tx
            .delete(Table::FunctionIds, function.functionid.into_bytes());
        ctx.tx.delete(Table::Functions, key);
    }
    Ok(())
}

/// Counts a successful run of `p` (closed at `p.endtime`) in the statistics of the function
/// its executor registered under that name, if it did.
pub(super) fn record_run<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    p: &Process,
    executorname: &str,
) -> Result<(), StoreError> {
    let colony = &p.spec.conditions.colonyname;
    let key = key(colony, executorname, &p.spec.funcname);
    let Some(mut function) = get_json::<Function, _>(&ctx.tx, Table::Functions, &key)? else {
        return Ok(());
    };
    let seconds =
        |from: proto::GoTime, to: proto::GoTime| match (from.unix_nanos(), to.unix_nanos()) {
            (Some(from), Some(to)) => (to - from).max(0) as f64 / 1e9,
            _ => 0.0,
        };
    function.record_run(
        seconds(p.submissiontime, p.starttime),
        seconds(p.starttime, p.endtime),
    );
    ctx.put_json(Table::Functions, key, &function);
    Ok(())
}
