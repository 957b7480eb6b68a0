//! The failures a ColonyOS server also has, in its wording and with its status: clients and
//! user guides match on these texts (pycolonies tells a permission problem by
//! `"Access denied"`). Every such failure the node sends is made here, and nowhere else; the
//! node's own failures follow the same style (`Access denied, ...` for a missing role).
//!
//! The ColonyOS wording and status, with the source each comes from, are quoted in
//! `docs/colonyos-failures.md`; a test in `node::api` checks every text and status of this
//! table against it.

use crate::error::{ApiError, ErrorCode};

/// A failure ColonyOS also has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColonyosFailure<'a> {
    /// The caller is not the server owner (`RequireServerOwner`).
    NotServerOwner,
    /// The caller does not own the colony (`RequireColonyOwner`).
    NotColonyOwner,
    /// The caller is neither an (approved) executor nor a user of the colony
    /// (`RequireMembership`; ColonyOS says this of an unapproved executor too).
    NotMember { colony: &'a str },
    /// A role check named a colony that does not exist.
    NoSuchColony { colony: &'a str },
    /// An assign found nothing to run.
    NoProcess,
    /// An assign that tries once met a paused colony.
    Paused,
    /// An assign that waits met a paused colony until its timeout.
    PausedTimeout,
    /// `addcolonymsg` with a name in use.
    ColonyExists { colony: &'a str },
    /// `addexecutormsg` with a name in use in the colony.
    ExecutorExists { executor: &'a str, colony: &'a str },
    /// `addusermsg` with a name in use in the colony.
    UserExists { user: &'a str, colony: &'a str },
}

impl ColonyosFailure<'_> {
    /// The kind (and so the HTTP status) it is sent with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ColonyosFailure::NotServerOwner
            | ColonyosFailure::NotColonyOwner
            | ColonyosFailure::NotMember { .. }
            | ColonyosFailure::NoSuchColony { .. } => ErrorCode::Forbidden,
            ColonyosFailure::NoProcess => ErrorCode::NotFound,
            ColonyosFailure::Paused => ErrorCode::Unavailable,
            ColonyosFailure::PausedTimeout => ErrorCode::Timeout,
            // ColonyOS answers 400; 409 says what happened, and clients (our executors among
            // them) act on it (see "Deliberate differences" in docs/ARCHITECTURE.md).
            ColonyosFailure::ColonyExists { .. }
            | ColonyosFailure::ExecutorExists { .. }
            | ColonyosFailure::UserExists { .. } => ErrorCode::Conflict,
        }
    }

    /// The text, in ColonyOS's words.
    pub fn message(&self) -> String {
        match self {
            ColonyosFailure::NotServerOwner => "Access denied, not server owner".into(),
            ColonyosFailure::NotColonyOwner => "Access denied, not colony owner".into(),
            ColonyosFailure::NotMember { colony } => {
                format!("Access denied, not a member of Colony with name <{colony}>")
            }
            ColonyosFailure::NoSuchColony { colony } => {
                format!("Colony with name <{colony}> does not exists")
            }
            ColonyosFailure::NoProcess => "No process available for assignment".into(),
            ColonyosFailure::Paused => {
                "No processes available: colony assignments are paused".into()
            }
            ColonyosFailure::PausedTimeout => {
                "Assignment timeout: colony assignments are paused".into()
            }
            ColonyosFailure::ColonyExists { colony } => {
                format!("A Colony with name <{colony}> already exists")
            }
            ColonyosFailure::ExecutorExists { executor, colony } => {
                format!("Executor with name <{executor}> in Colony <{colony}> already exists")
            }
            ColonyosFailure::UserExists { user, colony } => {
                format!("A user with name <{user}> already exists in Colony with name <{colony}>")
            }
        }
    }
}

impl From<ColonyosFailure<'_>> for ApiError {
    fn from(failure: ColonyosFailure<'_>) -> ApiError {
        ApiError::new(failure.code(), failure.message())
    }
}
