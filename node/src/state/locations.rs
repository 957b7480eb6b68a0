//! Apply logic for locations: named places of a colony, managed by its owner.

use super::keys::{self, Table};
use super::tx::StateRead;
use super::{auth, refuse_unless, validate, Ctx, Outcome};
use proto::command::Reply;
use proto::{ApiError, Location};

pub(super) fn add<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    location: &Location,
) -> Outcome<Reply> {
    let colony = &location.colonyname;
    refuse_unless!(auth::require_colony_owner(&ctx.tx, colony, ctx.caller())?);
    refuse_unless!(validate::name("location.name", &location.name));
    let key = keys::join(&[colony.as_bytes(), location.name.as_bytes()]);
    if ctx.tx.get(Table::Locations, &key)?.is_some() {
        return Ok(Err(ApiError::conflict(format!(
            "location with name {:?} already exists",
            location.name
        ))));
    }
    let locationid = if location.locationid.is_empty() {
        proto::crypto::sha3_hex(format!("{}/location", ctx.command.request_id).as_bytes())
    } else {
        refuse_unless!(validate::id("location.locationid", &location.locationid))
    };
    let location = Location {
        locationid,
        ..location.clone()
    };
    ctx.put_json(Table::Locations, key, &location);
    Ok(Ok(Reply::Location(location)))
}

pub(super) fn remove<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    name: &str,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_colony_owner(&ctx.tx, colony, ctx.caller())?);
    let key = keys::join(&[colony.as_bytes(), name.as_bytes()]);
    if ctx.tx.get(Table::Locations, &key)?.is_none() {
        return Ok(Err(ApiError::not_found(format!(
            "location with name {name:?} not found"
        ))));
    }
    ctx.tx.delete(Table::Locations, key);
    Ok(Ok(Reply::Done))
}
