//! Roles, decided against committed state: server owner, colony owner, member, and the
//! executor assigned to a process. Used by `apply` for writes and by the API for reads, so both
//! decide the same way.

use super::keys::{self, Table};
use super::tx::{Direction, StateRead, StoreError};
use super::{get_json, Outcome};
use proto::executor::executor_state;
use proto::failures::ColonyosFailure;
use proto::{Colony, Executor, User};

/// The recorded server owner id, if any.
pub fn server_id<R: StateRead + ?Sized>(state: &R) -> Result<Option<String>, StoreError> {
    let bytes = state.get(Table::Meta, keys::SERVER_ID)?;
    Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Refuses unless `caller` is the server owner.
pub fn require_server_owner<R: StateRead + ?Sized>(state: &R, caller: &str) -> Outcome<()> {
    match server_id(state)? {
        Some(id) if id == caller => Ok(Ok(())),
        _ => Ok(Err(ColonyosFailure::NotServerOwner.into())),
    }
}

/// Whether anyone in this mesh has identity `id`: the server owner, a colony owner, an
/// executor or a user. A refusal for an unknown identity is a failed authentication.
pub fn is_known<R: StateRead + ?Sized>(state: &R, id: &str) -> Result<bool, StoreError> {
    if server_id(state)?.is_some_and(|owner| owner == id)
        || state.get(Table::ExecutorIds, id.as_bytes())?.is_some()
    {
        return Ok(true);
    }
    let user = keys::prefix(&[id.as_bytes()]);
    if !state
        .scan(Table::UserIds, &user, None, Direction::Forward, 1)?
        .is_empty()
    {
        return Ok(true);
    }
    Ok(super::query::colonies(state)?
        .iter()
        .any(|colony| colony.colonyid == id))
}

/// The colony named `name`, or ColonyOS's refusal naming it (403, as a role check's).
pub fn colony<R: StateRead + ?Sized>(state: &R, name: &str) -> Outcome<Colony> {
    match get_json::<Colony, _>(state, Table::Colonies, name.as_bytes())? {
        Some(colony) => Ok(Ok(colony)),
        None => Ok(Err(ColonyosFailure::NoSuchColony { colony: name }.into())),
    }
}

/// Refuses unless `caller` owns the colony `name`; returns the colony.
pub fn require_colony_owner<R: StateRead + ?Sized>(
    state: &R,
    name: &str,
    caller: &str,
) -> Outcome<Colony> {
    let colony = match colony(state, name)? {
        Ok(colony) => colony,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if colony.colonyid != caller {
        return Ok(Err(ColonyosFailure::NotColonyOwner.into()));
    }
    Ok(Ok(colony))
}

/// Who a member is.
#[derive(Clone, Debug, PartialEq)]
pub enum Member {
    Executor(Box<Executor>),
    User(User),
}

impl Member {
    pub fn name(&self) -> &str {
        match self {
            Member::Executor(executor) => &executor.executorname,
            Member::User(user) => &user.name,
        }
    }
}

/// The executor with id `id`, in any colony.
pub fn executor_by_id<R: StateRead + ?Sized>(
    state: &R,
    id: &str,
) -> Result<Option<Executor>, StoreError> {
    let Some(location) = state.get(Table::ExecutorIds, id.as_bytes())? else {
        return Ok(None);
    };
    get_json(state, Table::Executors, &location)
}

/// The user with id `id` in colony `colony`.
pub fn user_by_id<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    id: &str,
) -> Result<Option<User>, StoreError> {
    let Some(name) = state.get(
        Table::UserIds,
        &keys::join(&[id.as_bytes(), colony.as_bytes()]),
    )?
    else {
        return Ok(None);
    };
    get_json(
        state,
        Table::Users,
        &keys::join(&[colony.as_bytes(), &name]),
    )
}

/// Refuses unless `caller` is a member of colony `colony`: an executor registered there
/// (approved, when `approved_required`) or a user of it.
pub fn require_member<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    caller: &str,
    approved_required: bool,
) -> Outcome<Member> {
    if let Some(executor) = executor_by_id(state, caller)? {
        let approved = executor.state == executor_state::APPROVED;
        if executor.colonyname == colony && (approved || !approved_required) {
            return Ok(Ok(Member::Executor(Box::new(executor))));
        }
    }
    if let Some(user) = user_by_id(state, colony, caller)? {
        return Ok(Ok(Member::User(user)));
    }
    Ok(Err(ColonyosFailure::NotMember { colony }.into()))
}

/// Member, or the colony owner (used where ColonyOS accepts both).
pub fn require_member_or_owner<R: StateRead + ?Sized>(
    state: &R,
    colony: &str,
    caller: &str,
) -> Outcome<()> {
    if let Ok(owned) = require_colony_owner(state, colony, caller)? {
        debug_assert_eq!(owned.colonyid, caller);
        return Ok(Ok(()));
    }
    Ok(require_member(state, colony, caller, true)?.map(|_| ()))
}
