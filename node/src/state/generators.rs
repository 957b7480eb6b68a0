//! Apply logic for generators: clients pack arguments; every `trigger` packed arguments start
//! one workflow whose roots get them as args, right when the pack that completes the batch is
//! applied. Arguments left waiting longer than `timeout` seconds since the first of them was
//! packed start a workflow with what there is, on the leader's tick.

use super::colonies::scan_all;
use super::crons::{parse_workflow, CHECKER_PERIOD_MS};
use super::keys::{self, Table};
use super::tick::keys_before;
use super::tx::{Direction, StateRead, StoreError};
use super::workflows::{self, Start};
use super::{auth, get_json, refuse_unless, validate, Ctx, Outcome};
use proto::command::Reply;
use proto::{ApiError, Generator, GoTime};
use serde_json::Value;

/// Most arguments waiting in one generator: a full generator refuses packs.
pub const GENERATOR_QUEUE_MAX: i64 = 100_000;
/// Largest accepted `trigger`.
pub const TRIGGER_MAX: i64 = 10_000;
/// Longest accepted packed argument, in bytes.
pub const ARG_BYTES_MAX: usize = 64 * 1024;
const NANOS_PER_SECOND: i64 = 1_000_000_000;

fn load<R: StateRead + ?Sized>(state: &R, id: &str) -> Result<Option<Generator>, StoreError> {
    get_json(state, Table::Generators, id.as_bytes())
}

/// When the waiting arguments of `g` time out, if they can.
fn due_at(g: &Generator) -> Option<i64> {
    let first = g.firstpack.unix_nanos()?;
    (g.queuesize > 0 && g.timeout > 0)
        .then(|| first.saturating_add(g.timeout.saturating_mul(NANOS_PER_SECOND)))
}

fn due_key(g: &Generator) -> Option<Vec<u8>> {
    let at = due_at(g)?;
    Some(keys::join(&[
        &keys::ordered_i64(at),
        g.generatorid.as_bytes(),
    ]))
}

/// Writes `new` (or deletes when `None`) with its name and due entries.
fn save<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    old: Option<&Generator>,
    new: Option<&Generator>,
) {
    if let Some(key) = old.and_then(due_key) {
        ctx.tx.delete(Table::GeneratorsDue, key);
    }
    if let Some(key) = new.and_then(due_key) {
        ctx.tx.put(Table::GeneratorsDue, key, Vec::new());
    }
    let name_key = |g: &Generator| keys::join(&[g.colonyname.as_bytes(), g.name.as_bytes()]);
    match (old, new) {
        (_, Some(g)) => {
            let id = g.generatorid.clone().into_bytes();
            ctx.tx.put(Table::GeneratorsByName, name_key(g), id.clone());
            ctx.put_json(Table::Generators, id, g);
        }
        (Some(g), None) => {
            ctx.tx.delete(Table::GeneratorsByName, name_key(g));
            ctx.tx
                .delete(Table::Generators, g.generatorid.clone().into_bytes());
        }
        (None, None) => {}
    }
}

pub(super) fn add<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    generator: &Generator,
) -> Outcome<Reply> {
    let colony = generator.colonyname.as_str();
    refuse_unless!(validate::name("generator.name", &generator.name));
    refuse_unless!(auth::colony(&ctx.tx, colony)?);
    let member = refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    if !(1..=TRIGGER_MAX).contains(&generator.trigger) {
        return Ok(Err(ApiError::bad_request(format!(
            "generator trigger must be between 1 and {TRIGGER_MAX}, not {}",
            generator.trigger
        ))));
    }
    if generator.timeout < 0 {
        return Ok(Err(ApiError::bad_request(
            "generator timeout must not be negative",
        )));
    }
    refuse_unless!(parse_workflow(&generator.workflowspec, colony));
    let name_key = keys::join(&[colony.as_bytes(), generator.name.as_bytes()]);
    if ctx.tx.get(Table::GeneratorsByName, &name_key)?.is_some() {
        return Ok(Err(ApiError::conflict(format!(
            "generator with name {:?} already exists",
            generator.name
        ))));
    }
    let id = proto::crypto::sha3_hex(format!("{}/generator", ctx.command.request_id).as_bytes());
    if load(&ctx.tx, &id)?.is_some() {
        return Ok(Err(ApiError::conflict(
            "generator id collision: request id reused",
        )));
    }
    let generator = Generator {
        generatorid: id,
        initiatorid: ctx.caller().to_string(),
        initiatorname: member.name().to_string(),
        firstpack: GoTime::ZERO,
        lastrun: GoTime::ZERO,
        queuesize: 0,
        checkerperiod: CHECKER_PERIOD_MS,
        ..generator.clone()
    };
    save(ctx, None, Some(&generator));
    Ok(Ok(Reply::Generator(Box::new(generator))))
}

/// The generator `id` if the caller is a member of its colony.
pub(crate) fn member_generator<R: StateRead + ?Sized>(
    state: &R,
    id: &str,
    caller: &str,
) -> Outcome<Generator> {
    let Some(generator) = load(state, id)? else {
        return Ok(Err(ApiError::not_found(format!(
            "generator with id {id:?} not found"
        ))));
    };
    refuse_unless!(auth::require_member(
        state,
        &generator.colonyname,
        caller,
        true
    )?);
    Ok(Ok(generator))
}

/// The generator named `name` in `colony`, if any.
pub fn by_name<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    name: &str,
) -> Result<Option<Generator>, StoreError> {
    let key = keys::join(&[colony.as_bytes(), name.as_bytes()]);
    match state.get(Table::GeneratorsByName, &key)? {
        Some(id) => load(state, &String::from_utf8_lossy(&id)),
        None => Ok(None),
    }
}

pub(super) fn pack<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    id: &str,
    arg: &str,
) -> Outcome<Reply> {
    let old = refuse_unless!(member_generator(&ctx.tx, id, ctx.caller())?);
    if arg.len() > ARG_BYTES_MAX {
        return Ok(Err(ApiError::bad_request(format!(
            "generator argument is {} bytes, longer than the limit of {ARG_BYTES_MAX}",
            arg.len()
        ))));
    }
    if old.queuesize >= GENERATOR_QUEUE_MAX {
        return Ok(Err(ApiError::unavailable(format!(
            "generator {id:?} already holds {GENERATOR_QUEUE_MAX} arguments"
        ))));
    }
    let now = ctx.now();
    let key = keys::join(&[
        id.as_bytes(),
        &keys::ordered_i64(now),
        ctx.command.request_id.as_bytes(),
    ]);
    ctx.tx
        .put(Table::GeneratorArgs, key, arg.as_bytes().to_vec());
    let mut generator = old.clone();
    generator.queuesize += 1;
    if generator.firstpack.is_zero() {
        generator.firstpack = GoTime::from_unix_nanos(now);
    }
    if generator.queuesize >= generator.trigger {
        let trigger = generator.trigger as usize;
        run(ctx, &mut generator, trigger)?;
    }
    save(ctx, Some(&old), Some(&generator));
    Ok(Ok(Reply::Done))
}

/// Starts one workflow with the `count` oldest waiting arguments as its roots' args.
fn run<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    generator: &mut Generator,
    count: usize,
) -> Result<(), StoreError> {
    let prefix = keys::prefix(&[generator.generatorid.as_bytes()]);
    let taken = ctx.tx.scan(
        Table::GeneratorArgs,
        &prefix,
        None,
        Direction::Forward,
        count,
    )?;
    let mut args = Vec::with_capacity(taken.len());
    for (key, value) in taken {
        args.push(Value::String(String::from_utf8_lossy(&value).into_owned()));
        ctx.tx.delete(Table::GeneratorArgs, key);
    }
    generator.queuesize -= args.len() as i64;
    let now = ctx.now();
    generator.lastrun = GoTime::from_unix_nanos(now);
    generator.firstpack = match generator.queuesize {
        0 => GoTime::ZERO,
        _ => GoTime::from_unix_nanos(now),
    };
    // Checked when the generator was added; a refusal now skips the run (args are used up).
    let Ok(specs) = parse_workflow(&generator.workflowspec, &generator.colonyname) else {
        return Ok(());
    };
    let seed = format!(
        "{}/{}/",
        generator.generatorid,
        generator.lastrun.to_rfc3339()
    );
    let start = Start {
        initiatorid: &generator.initiatorid,
        initiatorname: &generator.initiatorname,
        seed: &seed,
        root_input: Vec::new(),
        root_args: Some(args),
    };
    let colony = generator.colonyname.clone();
    let _ = workflows::create(ctx, &colony, specs, start)?;
    Ok(())
}

pub(super) fn remove<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, id: &str) -> Outcome<Reply> {
    let generator = refuse_unless!(member_generator(&ctx.tx, id, ctx.caller())?);
    delete(ctx, &generator)?;
    Ok(Ok(Reply::Done))
}

fn delete<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    generator: &Generator,
) -> Result<(), StoreError> {
    let prefix = keys::prefix(&[generator.generatorid.as_bytes()]);
    for (key, _) in scan_all(ctx, Table::GeneratorArgs, &prefix)? {
        ctx.tx.delete(Table::GeneratorArgs, key);
    }
    save(ctx, Some(generator), None);
    Ok(())
}

/// Removes every generator of `colony` with its waiting arguments.
pub(super) fn remove_all<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
) -> Result<(), StoreError> {
    let prefix = keys::prefix(&[colony.as_bytes()]);
    for (_, id) in scan_all(ctx, Table::GeneratorsByName, &prefix)? {
        if let Some(generator) = load(&ctx.tx, &String::from_utf8_lossy(&id))? {
            delete(ctx, &generator)?;
        }
    }
    Ok(())
}

/// Starts the generators whose waiting arguments timed out by the tick's time (at most
/// `budget`); returns how many.
pub(super) fn tick<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    budget: usize,
) -> Result<usize, StoreError> {
    let now = ctx.now();
    // Due at or before the tick's time.
    let due = keys_before(
        &ctx.tx,
        Table::GeneratorsDue,
        b"",
        now.saturating_add(1),
        budget,
    )?;
    let mut handled = 0;
    for key in due {
        let id = keys::trailing_id(&key).to_string();
        let old =
            load(&ctx.tx, &id)?.ok_or_else(|| StoreError(format!("due generator {id} missing")))?;
        let mut generator = old.clone();
        let waiting = generator.queuesize as usize;
        run(ctx, &mut generator, waiting)?;
        save(ctx, Some(&old), Some(&generator));
        handled += 1;
    }
    Ok(handled)
}

/// Up to `count` generators of `colony`, by name.
pub fn list<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    count: usize,
) -> Result<Vec<Generator>, StoreError> {
    let prefix = keys::prefix(&[colony.as_bytes()]);
    let listed = state.scan(
        Table::GeneratorsByName,
        &prefix,
        None,
        Direction::Forward,
        count,
    )?;
    let mut found = Vec::with_capacity(listed.len());
    for (_, id) in listed {
        let id = String::from_utf8_lossy(&id).into_owned();
        let g = load(state, &id)?
            .ok_or_else(|| StoreError(format!("listed generator {id} missing")))?;
        found.push(g);
    }
    Ok(found)
}
