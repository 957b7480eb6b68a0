//! Apply logic for executors: registration, approval, removal.

use super::keys::{self, Table};
use super::tx::{StateRead, StoreError};
use super::{auth, get_json, processes, refuse_unless, validate, Ctx, Outcome};
use proto::command::Reply;
use proto::executor::executor_state;
use proto::executor::{Allocations, Capabilities};
use proto::failures::ColonyosFailure;
use proto::{ApiError, Executor, GoTime};

pub(super) fn add<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    executor: &Executor,
) -> Outcome<Reply> {
    let colony = &executor.colonyname;
    refuse_unless!(auth::require_colony_owner(&ctx.tx, colony, ctx.caller())?);
    refuse_unless!(validate::name("executorname", &executor.executorname));
    refuse_unless!(validate::name("executortype", &executor.executortype));
    let executorid = refuse_unless!(validate::id("executorid", &executor.executorid));
    let key = keys::join(&[colony.as_bytes(), executor.executorname.as_bytes()]);
    if ctx.tx.get(Table::Executors, &key)?.is_some() {
        let exists = ColonyosFailure::ExecutorExists {
            executor: &executor.executorname,
            colony,
        };
        return Ok(Err(exists.into()));
    }
    if ctx
        .tx
        .get(Table::ExecutorIds, executorid.as_bytes())?
        .is_some()
    {
        return Ok(Err(ApiError::conflict(
            "an executor with this executorid already exists",
        )));
    }
    let now = GoTime::from_unix_nanos(ctx.now());
    let executor = Executor {
        executorid,
        state: executor_state::PENDING,
        commissiontime: now,
        // Set by its first assign; until then it is not stale (ColonyOS).
        lastheardfromtime: GoTime::ZERO,
        ..executor.clone()
    };
    ctx.put_json(Table::Executors, key.clone(), &executor);
    ctx.tx.put(
        Table::ExecutorIds,
        executor.executorid.clone().into_bytes(),
        key,
    );
    Ok(Ok(Reply::Executor(Box::new(executor))))
}

fn owned_executor<R: StateRead + ?Sized>(
    ctx: &Ctx<'_, R>,
    colony: &str,
    name: &str,
) -> Outcome<(Vec<u8>, Executor)> {
    refuse_unless!(auth::require_colony_owner(&ctx.tx, colony, ctx.caller())?);
    let key = keys::join(&[colony.as_bytes(), name.as_bytes()]);
    match get_json::<Executor, _>(&ctx.tx, Table::Executors, &key)? {
        Some(executor) => Ok(Ok((key, executor))),
        None => Ok(Err(ApiError::not_found(format!(
            "executor with name {name:?} not found"
        )))),
    }
}

pub(super) fn set_approval<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    name: &str,
    approved: bool,
) -> Outcome<Reply> {
    let (key, mut executor) = refuse_unless!(owned_executor(ctx, colony, name)?);
    executor.state = if approved {
        executor_state::APPROVED
    } else {
        executor_state::REJECTED
    };
    ctx.put_json(Table::Executors, key, &executor);
    Ok(Ok(Reply::Done))
}

pub(super) fn remove<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    name: &str,
) -> Outcome<Reply> {
    let (_, executor) = refuse_unless!(owned_executor(ctx, colony, name)?);
    delete(ctx, &executor)?;
    Ok(Ok(Reply::Done))
}

/// Removes `executor` with the functions it registered; its running processes go back to the
/// queue, keeping their retry count (ColonyOS).
pub(super) fn delete<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    executor: &Executor,
) -> Result<(), StoreError> {
    let (colony, name) = (&executor.colonyname, &executor.executorname);
    processes::release_assigned(ctx, &executor.executorid)?;
    super::functions::remove_of_executor(ctx, colony, name)?;
    ctx.tx
        .delete(Table::ExecutorIds, executor.executorid.clone().into_bytes());
    let key = keys::join(&[colony.as_bytes(), name.as_bytes()]);
    ctx.tx.delete(Table::Executors, key);
    Ok(())
}

/// The calling executor itself, registered as `name` in `colony` (approval not required).
fn calling_executor<R: StateRead + ?Sized>(
    ctx: &Ctx<'_, R>,
    colony: &str,
    name: &str,
) -> Outcome<(Vec<u8>, Executor)> {
    let member = refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), false)?);
    match member {
        auth::Member::Executor(executor) if executor.executorname == name => {
            let key = keys::join(&[colony.as_bytes(), name.as_bytes()]);
            Ok(Ok((key, *executor)))
        }
        _ => Ok(Err(ApiError::forbidden(format!(
            "Access denied, caller is not executor {name:?}"
        )))),
    }
}

pub(super) fn update_capabilities<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    name: &str,
    capabilities: &Capabilities,
) -> Outcome<Reply> {
    let (key, mut executor) = refuse_unless!(calling_executor(ctx, colony, name)?);
    executor.capabilities = capabilities.clone();
    ctx.put_json(Table::Executors, key, &executor);
    Ok(Ok(Reply::Done))
}

pub(super) fn report_allocations<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    name: &str,
    allocations: &Allocations,
) -> Outcome<Reply> {
    let (key, mut executor) = refuse_unless!(calling_executor(ctx, colony, name)?);
    executor.allocations = allocations.clone();
    ctx.put_json(Table::Executors, key, &executor);
    Ok(Ok(Reply::Done))
}

pub(super) fn change_id<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    new_id: &str,
) -> Outcome<Reply> {
    let new_id = refuse_unless!(validate::id("executorid", new_id));
    let member = refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), false)?);
    let auth::Member::Executor(mut executor) = member else {
        return Ok(Err(ApiError::forbidden(
            "Access denied, only executors change their executor id",
        )));
    };
    if ctx.tx.get(Table::ExecutorIds, new_id.as_bytes())?.is_some() {
        return Ok(Err(ApiError::conflict(
            "an executor with this executorid already exists",
        )));
    }
    let running = ctx.tx.scan(
        Table::Assigned,
        &keys::prefix(&[executor.executorid.as_bytes()]),
        None,
        super::tx::Direction::Forward,
        1,
    )?;
    if !running.is_empty() {
        return Ok(Err(ApiError::bad_request(
            "the executor is running processes; close them before changing its id",
        )));
    }
    let key = keys::join(&[colony.as_bytes(), executor.executorname.as_bytes()]);
    ctx.tx
        .delete(Table::ExecutorIds, executor.executorid.clone().into_bytes());
    executor.executorid = new_id;
    ctx.tx.put(
        Table::ExecutorIds,
        executor.executorid.clone().into_bytes(),
        key.clone(),
    );
    ctx.put_json(Table::Executors, key, &*executor);
    Ok(Ok(Reply::Done))
}
