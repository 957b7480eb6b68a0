//! Apply logic for blueprints: definitions (a kind, an optional schema, a reconciler: executor
//! type and function) and blueprints of those kinds. Adding, changing (spec or forced) or
//! reconciling a blueprint submits a reconcile process (`kwargs {kind, blueprintName}`); each
//! (colony, kind, location) with blueprints has a cron `reconcile-<kind>[-<location>]` that
//! reconciles the kind periodically (`kwargs {kind}`), removed with its last blueprint.
//! Spec changes are recorded in the blueprint's history.
//!
//! Unlike ColonyOS: definitions are looked up within the blueprint's colony, a duplicate
//! definition name is a conflict (409), the cron honours `reconcileInterval`, and history goes
//! with its blueprint.

use super::colonies::scan_all;
use super::keys::{self, Table};
use super::query::list_json;
use super::tx::{Direction, StateRead, StoreError};
use super::{auth, crons, get_json, processes, refuse_unless, validate, Ctx, Outcome};
use proto::blueprint::{check_schema, Blueprint, BlueprintDefinition, BlueprintHistory};
use proto::command::Reply;
use proto::{ApiError, Cron, FunctionSpec, GoTime, Location, WorkflowSpec};
use serde_json::{json, Map, Value};

/// Seconds between periodic reconciliations when a definition gives none (ColonyOS: 60).
pub const RECONCILE_INTERVAL_DEFAULT: i64 = 60;
/// History entries kept per blueprint; older ones are dropped.
pub const HISTORY_MAX: usize = 1000;

fn named(colony: &str, name: &str) -> Vec<u8> {
    keys::join(&[colony.as_bytes(), name.as_bytes()])
}

/// The initiator name of a caller that may be the colony owner rather than a member.
fn caller_name<R: StateRead + ?Sized>(
    ctx: &Ctx<'_, R>,
    colony: &str,
) -> Result<String, StoreError> {
    Ok(
        match auth::require_member(&ctx.tx, colony, ctx.caller(), true)? {
            Ok(member) => member.name().to_string(),
            Err(_) => "colony owner".to_string(),
        },
    )
}

pub fn definition<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    name: &str,
) -> Result<Option<BlueprintDefinition>, StoreError> {
    get_json(state, Table::BlueprintDefinitions, &named(colony, name))
}

pub fn definitions<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
) -> Result<Vec<BlueprintDefinition>, StoreError> {
    let prefix = keys::prefix(&[colony.as_bytes()]);
    list_json(state, Table::BlueprintDefinitions, &prefix)
}

/// The definition of `kind` in `colony` (the first by name, as ColonyOS picks).
fn definition_of_kind<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    kind: &str,
) -> Result<Option<BlueprintDefinition>, StoreError> {
    let all = definitions(state, colony)?;
    Ok(all.into_iter().find(|d| d.spec.names.kind == kind))
}

pub fn blueprint<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    name: &str,
) -> Result<Option<Blueprint>, StoreError> {
    get_json(state, Table::Blueprints, &named(colony, name))
}

/// Blueprints of `colony`, of `kind` (all kinds when empty) at `location` (any when empty;
/// compared ignoring case).
pub fn blueprints<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    kind: &str,
    location: &str,
) -> Result<Vec<Blueprint>, StoreError> {
    let all: Vec<Blueprint> = list_json(
        state,
        Table::Blueprints,
        &keys::prefix(&[colony.as_bytes()]),
    )?;
    let wanted = |b: &Blueprint| {
        let kind_ok = kind.is_empty() || b.kind == kind;
        let location_ok = location.is_empty()
            || kind.is_empty()
            || b.metadata.locationname.eq_ignore_ascii_case(location);
        kind_ok && location_ok
    };
    Ok(all.into_iter().filter(wanted).collect())
}

/// The blueprint `id`, wherever it is.
pub fn blueprint_by_id<R: StateRead + ?Sized>(
    state: &R,
    id: &str,
) -> Result<Option<Blueprint>, StoreError> {
    match state.get(Table::BlueprintIds, id.as_bytes())? {
        Some(key) => get_json(state, Table::Blueprints, &key),
        None => Ok(None),
    }
}

/// Up to `limit` history entries of blueprint `id` (0: all kept), newest first.
pub fn history<R: StateRead + ?Sized>(
    state: &R,
    id: &str,
    limit: usize,
) -> Result<Vec<BlueprintHistory>, StoreError> {
    let limit = if limit == 0 {
        HISTORY_MAX
    } else {
        limit.min(HISTORY_MAX)
    };
    let prefix = keys::prefix(&[id.as_bytes()]);
    let found = state.scan(
        Table::BlueprintHistory,
        &prefix,
        None,
        Direction::Reverse,
        limit,
    )?;
    found
        .iter()
        .map(|(_, v)| super::colonies::decode(v))
        .collect()
}

pub(super) fn add_definition<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    definition: &BlueprintDefinition,
) -> Outcome<Reply> {
    let colony = definition.metadata.colonyname.clone();
    refuse_unless!(auth::require_colony_owner(&ctx.tx, &colony, ctx.caller())?);
    refuse_unless!(validate::name("metadata.name", &definition.metadata.name));
    refuse_unless!(validate::name(
        "spec.names.kind",
        &definition.spec.names.kind
    ));
    let key = named(&colony, &definition.metadata.name);
    if ctx.tx.get(Table::BlueprintDefinitions, &key)?.is_some() {
        return Ok(Err(ApiError::conflict(format!(
            "blueprint definition {:?} already exists",
            definition.metadata.name
        ))));
    }
    let mut definition = definition.clone();
    if definition.blueprintdefinitionid.is_empty() {
        definition.blueprintdefinitionid =
            proto::crypto::sha3_hex(format!("{}/definition", ctx.command.request_id).as_bytes());
    }
    ctx.put_json(Table::BlueprintDefinitions, key, &definition);
    Ok(Ok(Reply::BlueprintDefinition(Box::new(definition))))
}

pub(super) fn remove_definition<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    name: &str,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_colony_owner(&ctx.tx, colony, ctx.caller())?);
    let Some(definition) = definition(&ctx.tx, colony, name)? else {
        return Ok(Err(ApiError::not_found(format!(
            "blueprint definition {name:?} not found"
        ))));
    };
    let kind = &definition.spec.names.kind;
    let in_use = blueprints(&ctx.tx, colony, kind, "")?.len();
    if in_use > 0 {
        return Ok(Err(ApiError::conflict(format!(
            "cannot remove blueprint definition {name:?}: {in_use} blueprint(s) of kind \
             {kind:?} still exist"
        ))));
    }
    ctx.tx
        .delete(Table::BlueprintDefinitions, named(colony, name));
    Ok(Ok(Reply::Done))
}

/// The definition of a blueprint's kind, checking the blueprint against its schema.
fn checked_kind<R: StateRead + ?Sized>(
    ctx: &Ctx<'_, R>,
    b: &Blueprint,
) -> Outcome<BlueprintDefinition> {
    if b.kind.is_empty() {
        return Ok(Err(ApiError::bad_request(
            "blueprint kind must not be empty",
        )));
    }
    let colony = &b.metadata.colonyname;
    let Some(definition) = definition_of_kind(&ctx.tx, colony, &b.kind)? else {
        return Ok(Err(ApiError::bad_request(format!(
            "no blueprint definition for kind {:?} in colony {colony:?}",
            b.kind
        ))));
    };
    if let Some(schema) = &definition.spec.schema {
        let spec = Value::Object(b.spec.clone());
        if let Err(reason) = check_schema(schema, &spec, "spec") {
            return Ok(Err(ApiError::bad_request(format!(
                "blueprint does not match the schema of kind {:?}: {reason}",
                b.kind
            ))));
        }
    }
    Ok(Ok(definition))
}

/// A member of the colony, or its owner.
fn member_or_owner<R: StateRead + ?Sized>(ctx: &Ctx<'_, R>, colony: &str) -> Outcome<()> {
    auth::require_member_or_owner(&ctx.tx, colony, ctx.caller())
}

fn record_history<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    b: &Blueprint,
    changetype: &str,
) -> Result<(), StoreError> {
    let now = ctx.now();
    let entry = BlueprintHistory {
        historyid: proto::crypto::sha3_hex(
            format!("{}/history/{}", ctx.command.request_id, b.blueprintid).as_bytes(),
        ),
        blueprintid: b.blueprintid.clone(),
        kind: b.kind.clone(),
        namespace: b.metadata.colonyname.clone(),
        name: b.metadata.name.clone(),
        generation: b.metadata.generation,
        spec: b.spec.clone(),
        status: b.status.clone(),
        timestamp: GoTime::from_unix_nanos(now),
        changedby: ctx.caller().to_string(),
        changetype: changetype.to_string(),
    };
    let key = keys::join(&[
        b.blueprintid.as_bytes(),
        &keys::ordered_i64(now),
        entry.historyid.as_bytes(),
    ]);
    ctx.put_json(Table::BlueprintHistory, key, &entry);
    let prefix = keys::prefix(&[b.blueprintid.as_bytes()]);
    let kept = ctx.tx.scan(
        Table::BlueprintHistory,
        &prefix,
        None,
        Direction::Reverse,
        HISTORY_MAX + 1,
    )?;
    if let Some((oldest, _)) = kept.get(HISTORY_MAX) {
        ctx.tx.delete(Table::BlueprintHistory, oldest.clone());
    }
    Ok(())
}

/// The reconcile function spec of a blueprint's kind, or why there is none.
fn reconcile_spec(
    definition: &BlueprintDefinition,
    b: &Blueprint,
    kwargs: Map<String, Value>,
) -> Result<FunctionSpec, ApiError> {
    let handler = &definition.spec.handler;
    if handler.executor_type.is_empty() || handler.function_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "the definition of kind {:?} names no reconciler (handler.executorType and \
             handler.functionName)",
            b.kind
        )));
    }
    let mut spec = FunctionSpec {
        nodename: format!("{}-{}", handler.executor_type, handler.function_name),
        funcname: handler.function_name.clone(),
        kwargs: Some(kwargs),
        maxwaittime: -1,
        maxexectime: -1,
        maxretries: -1,
        ..FunctionSpec::default()
    };
    spec.conditions.colonyname = b.metadata.colonyname.clone();
    spec.conditions.executortype = handler.executor_type.clone();
    spec.conditions.locationname = b.metadata.locationname.clone();
    validate::spec(&spec)
}

/// Submits a reconciliation of `b` by its kind's reconciler; returns the process.
fn reconcile_now<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    definition: &BlueprintDefinition,
    b: &Blueprint,
    force: bool,
) -> Outcome<proto::Process> {
    let mut kwargs = Map::new();
    kwargs.insert("kind".into(), json!(b.kind));
    kwargs.insert("blueprintName".into(), json!(b.metadata.name));
    if force {
        kwargs.insert("force".into(), json!(true));
    }
    let spec = refuse_unless!(reconcile_spec(definition, b, kwargs));
    let name = caller_name(ctx, &b.metadata.colonyname)?;
    let caller = ctx.caller().to_string();
    let seed = format!("{}/", b.blueprintid);
    processes::create(ctx, spec, &caller, &name, &seed)
}

fn cron_name(b: &Blueprint) -> String {
    match b.metadata.locationname.as_str() {
        "" => format!("reconcile-{}", b.kind),
        location => format!("reconcile-{}-{location}", b.kind),
    }
}

/// Makes sure the kind's periodic reconciliation at `b`'s location exists.
fn ensure_cron<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    definition: &BlueprintDefinition,
    b: &Blueprint,
) -> Outcome<()> {
    let mut kwargs = Map::new();
    kwargs.insert("kind".into(), json!(b.kind));
    let spec = refuse_unless!(reconcile_spec(definition, b, kwargs));
    let workflow = WorkflowSpec {
        colonyname: b.metadata.colonyname.clone(),
        functionspecs: vec![spec],
    };
    let interval = match definition.spec.handler.reconcile_interval {
        i if i > 0 => i,
        _ => RECONCILE_INTERVAL_DEFAULT,
    };
    let cron = Cron {
        initiatorid: ctx.caller().to_string(),
        initiatorname: caller_name(ctx, &b.metadata.colonyname)?,
        colonyname: b.metadata.colonyname.clone(),
        name: cron_name(b),
        interval,
        workflowspec: serde_json::to_string(&workflow).expect("workflows always serialize"),
        waitforprevprocessgraph: true,
        ..Cron::default()
    };
    crons::ensure(ctx, cron)?;
    Ok(Ok(()))
}

/// Creates the blueprint's location if it names one that does not exist (ColonyOS).
fn ensure_location<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, b: &Blueprint) {
    let location = &b.metadata.locationname;
    if location.is_empty() {
        return;
    }
    let key = named(&b.metadata.colonyname, location);
    if matches!(ctx.tx.get(Table::Locations, &key), Ok(Some(_))) {
        return;
    }
    let created = Location {
        locationid: proto::crypto::sha3_hex(
            format!("{}/location", ctx.command.request_id).as_bytes(),
        ),
        name: location.clone(),
        colonyname: b.metadata.colonyname.clone(),
        ..Location::default()
    };
    ctx.put_json(Table::Locations, key, &created);
}

fn save<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, b: &Blueprint) {
    let key = named(&b.metadata.colonyname, &b.metadata.name);
    ctx.tx.put(
        Table::BlueprintIds,
        b.blueprintid.clone().into_bytes(),
        key.clone(),
    );
    ctx.put_json(Table::Blueprints, key, b);
}

pub(super) fn add<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, b: &Blueprint) -> Outcome<Reply> {
    let colony = b.metadata.colonyname.clone();
    refuse_unless!(auth::colony(&ctx.tx, &colony)?);
    refuse_unless!(member_or_owner(ctx, &colony)?);
    refuse_unless!(validate::name("metadata.name", &b.metadata.name));
    let definition = refuse_unless!(checked_kind(ctx, b)?);
    if blueprint(&ctx.tx, &colony, &b.metadata.name)?.is_some() {
        return Ok(Err(ApiError::conflict(format!(
            "blueprint {:?} already exists",
            b.metadata.name
        ))));
    }
    let mut b = b.clone();
    if b.blueprintid.is_empty() {
        b.blueprintid =
            proto::crypto::sha3_hex(format!("{}/blueprint", ctx.command.request_id).as_bytes());
    } else {
        b.blueprintid = refuse_unless!(validate::id("blueprintid", &b.blueprintid));
    }
    if ctx
        .tx
        .get(Table::BlueprintIds, b.blueprintid.as_bytes())?
        .is_some()
    {
        return Ok(Err(ApiError::conflict(
            "a blueprint with this id already exists",
        )));
    }
    ensure_location(ctx, &b);
    save(ctx, &b);
    record_history(ctx, &b, "create")?;
    let handler = &definition.spec.handler;
    if !handler.executor_type.is_empty() && !handler.function_name.is_empty() {
        refuse_unless!(ensure_cron(ctx, &definition, &b)?);
        refuse_unless!(reconcile_now(ctx, &definition, &b, false)?);
    }
    Ok(Ok(Reply::Blueprint(Box::new(b))))
}

pub(super) fn update<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    b: &Blueprint,
    force: bool,
) -> Outcome<Reply> {
    let colony = b.metadata.colonyname.clone();
    refuse_unless!(member_or_owner(ctx, &colony)?);
    let Some(old) = blueprint(&ctx.tx, &colony, &b.metadata.name)? else {
        return Ok(Err(ApiError::not_found(format!(
            "blueprint {:?} not found",
            b.metadata.name
        ))));
    };
    let definition = refuse_unless!(checked_kind(ctx, b)?);
    let changed = old.spec != b.spec || force;
    let mut b = b.clone();
    b.blueprintid = old.blueprintid.clone();
    b.metadata.generation = old.metadata.generation + i64::from(changed);
    save(ctx, &b);
    if changed {
        record_history(ctx, &b, "update")?;
        let handler = &definition.spec.handler;
        if !handler.executor_type.is_empty() && !handler.function_name.is_empty() {
            refuse_unless!(reconcile_now(ctx, &definition, &b, false)?);
        }
    }
    Ok(Ok(Reply::Blueprint(Box::new(b))))
}

pub(super) fn remove<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    name: &str,
) -> Outcome<Reply> {
    refuse_unless!(member_or_owner(ctx, colony)?);
    let Some(b) = blueprint(&ctx.tx, colony, name)? else {
        return Ok(Err(ApiError::not_found(format!(
            "blueprint {name:?} not found"
        ))));
    };
    delete(ctx, &b)?;
    Ok(Ok(Reply::Done))
}

/// Deletes a blueprint with its history, and its kind's cron at its location when it was the
/// last one there.
fn delete<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, b: &Blueprint) -> Result<(), StoreError> {
    let colony = &b.metadata.colonyname;
    ctx.tx
        .delete(Table::Blueprints, named(colony, &b.metadata.name));
    ctx.tx
        .delete(Table::BlueprintIds, b.blueprintid.clone().into_bytes());
    let history = keys::prefix(&[b.blueprintid.as_bytes()]);
    for (key, _) in scan_all(ctx, Table::BlueprintHistory, &history)? {
        ctx.tx.delete(Table::BlueprintHistory, key);
    }
    let same_place = blueprints(&ctx.tx, colony, &b.kind, "")?
        .into_iter()
        .any(|other| other.metadata.locationname == b.metadata.locationname);
    if !same_place {
        crons::remove_named(ctx, colony, &cron_name(b))?;
    }
    Ok(())
}

pub(super) fn update_status<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    name: &str,
    status: &Map<String, Value>,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    let Some(mut b) = blueprint(&ctx.tx, colony, name)? else {
        return Ok(Err(ApiError::not_found(format!(
            "blueprint {name:?} not found"
        ))));
    };
    b.status = Some(status.clone());
    save(ctx, &b);
    Ok(Ok(Reply::Done))
}

pub(super) fn reconcile<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    name: &str,
    force: bool,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    let Some(mut b) = blueprint(&ctx.tx, colony, name)? else {
        return Ok(Err(ApiError::not_found(format!(
            "blueprint {name:?} not found"
        ))));
    };
    let Some(definition) = definition_of_kind(&ctx.tx, colony, &b.kind)? else {
        return Ok(Err(ApiError::bad_request(format!(
            "no blueprint definition for kind {:?}",
            b.kind
        ))));
    };
    if force {
        b.metadata.generation += 1;
        save(ctx, &b);
    }
    let process = refuse_unless!(reconcile_now(ctx, &definition, &b, force)?);
    Ok(Ok(Reply::Process(Box::new(process))))
}

/// Removes every blueprint and definition of `colony`.
pub(super) fn remove_all<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
) -> Result<(), StoreError> {
    let prefix = keys::prefix(&[colony.as_bytes()]);
    for (_, value) in scan_all(ctx, Table::Blueprints, &prefix)? {
        let b: Blueprint = super::colonies::decode(&value)?;
        delete(ctx, &b)?;
    }
    for (key, _) in scan_all(ctx, Table::BlueprintDefinitions, &prefix)? {
        ctx.tx.delete(Table::BlueprintDefinitions, key);
    }
    Ok(())
}
