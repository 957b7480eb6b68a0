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
    /// `getprocessmsg` names a process that does not exist.
    ProcessNotFound,
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
    /// The payload of `msgtype` is not JSON of its message (`detail` says why).
    InvalidJson { msgtype: &'a str, detail: &'a str },
    /// The payload's `msgtype` is not the envelope's `payloadtype` (`msgtype`).
    MsgTypeMismatch { msgtype: &'a str, detail: &'a str },
}

impl ColonyosFailure<'_> {
    /// The kind (and so the HTTP status) it is sent with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ColonyosFailure::NotServerOwner
            | ColonyosFailure::NotColonyOwner
            | ColonyosFailure::NotMember { .. }
            | ColonyosFailure::NoSuchColony { .. } => ErrorCode::Forbidden,
            ColonyosFailure::NoProcess | ColonyosFailure::ProcessNotFound => ErrorCode::NotFound,
            ColonyosFailure::InvalidJson { .. } | ColonyosFailure::MsgTypeMismatch { .. } => {
                ErrorCode::BadRequest
            }
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
            ColonyosFailure::ProcessNotFound => "Failed to get process, process not found".into(),
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
            // ColonyOS's words first; what exactly was wrong after them.
            ColonyosFailure::InvalidJson { msgtype, detail } => {
                format!("{}: {detail}", malformed(msgtype).0)
            }
            ColonyosFailure::MsgTypeMismatch { msgtype, detail } => {
                format!("{}: {detail}", malformed(msgtype).1)
            }
        }
    }
}

/// ColonyOS's texts for a malformed payload of `msgtype`: (not JSON of its message, `msgtype`
/// not the envelope's). Each handler of ColonyOS words them itself (slips included); a type
/// ColonyOS does not have gets the same shape.
pub fn malformed(msgtype: &str) -> (String, String) {
    match MALFORMED.iter().find(|(t, _, _)| *t == msgtype) {
        Some((_, invalid, mismatch)) => (invalid.to_string(), mismatch.to_string()),
        None => (
            format!("Failed to handle {msgtype}, invalid JSON"),
            format!("Failed to handle {msgtype}, msg.MsgType does not match payloadType"),
        ),
    }
}

/// (message type, invalid JSON text, msgtype mismatch text) of every ColonyOS handler, as
/// quoted in `docs/colonyos-failures.md`.
pub const MALFORMED: &[(&str, &str, &str)] = &[
    (
        "addattributemsg",
        "Failed to add attribute, invalid JSON",
        "Failed to add attribute, msg.MsgType does not match payloadType",
    ),
    (
        "addblueprintdefinitionmsg",
        "Failed to add blueprint definition, invalid JSON",
        "Failed to add blueprint definition, msg.MsgType does not match payloadType",
    ),
    (
        "addblueprintmsg",
        "Failed to add blueprint, invalid JSON",
        "Failed to add blueprint, msg.MsgType does not match payloadType",
    ),
    (
        "addchildmsg",
        "Failed to add child to processgraph, invalid JSON",
        "Failed to add child to processgraph, msg.MsgType does not match payloadType",
    ),
    (
        "addcolonymsg",
        "Failed to add colony, invalid JSON",
        "Failed to add colony, msg.MsgType does not match payloadType",
    ),
    (
        "addcronmsg",
        "Failed to add cron, invalid JSON",
        "Failed to add cron, msg.MsgType does not match payloadType",
    ),
    (
        "addexecutorlogmsg",
        "Failed to add executor log, invalid JSON",
        "Failed to add executor log, msg.MsgType does not match payloadType",
    ),
    (
        "addexecutormsg",
        "Failed to add executor, invalid JSON",
        "Failed to add executor, msg.MsgType does not match payloadType",
    ),
    (
        "addfilemsg",
        "Failed to add log, invalid JSON",
        "Failed to add file, msg.MsgType does not match payloadType",
    ),
    (
        "addfunctionmsg",
        "Failed to add function, invalid JSON",
        "Failed to add function, msg.MsgType does not match payloadType",
    ),
    (
        "addgeneratormsg",
        "Failed to add generator, invalid JSON",
        "Failed to add generator, msg.MsgType does not match payloadType",
    ),
    (
        "addlocationmsg",
        "Failed to add location, invalid JSON",
        "Failed to add location, msg.MsgType does not match payloadType",
    ),
    (
        "addlogmsg",
        "Failed to add log, invalid JSON",
        "Failed to add log, msg.MsgType does not match payloadType",
    ),
    (
        "addusermsg",
        "Failed to add user, invalid JSON",
        "Failed to add user, msg.MsgType does not match payloadType",
    ),
    (
        "approveexecutormsg",
        "Failed to approve executor, invalid JSON",
        "Failed to approve executor, msg.MsgType does not match payloadType",
    ),
    (
        "assignprocessmsg",
        "Failed to assign process, invalid JSON",
        "Failed to assign process, msg.msgType does not match payloadType",
    ),
    (
        "cancelprocessgraphmsg",
        "Failed to cancel processgraph, invalid JSON",
        "Failed to cancel processgraph, msg.MsgType does not match payloadType",
    ),
    (
        "cancelprocessmsg",
        "Failed to cancel process, invalid JSON",
        "Failed to cancel process, msg.MsgType does not match payloadType",
    ),
    (
        "changecolonyidmsg",
        "Failed to change colony Id, invalid JSON",
        "Failed to change colony Id, msg.MsgType does not match payloadType",
    ),
    (
        "changeexecutoridmsg",
        "Failed to change executor Id, invalid JSON",
        "Failed to change executor Id, msg.MsgType does not match payloadType",
    ),
    (
        "changeserveridmsg",
        "Failed to change colony Id, invalid JSON",
        "Failed to change colony Id, msg.MsgType does not match payloadType",
    ),
    (
        "changeuseridmsg",
        "Failed to add log, invalid JSON",
        "Failed to change user Id, msg.MsgType does not match payloadType",
    ),
    (
        "channelappendmsg",
        "Failed to append to channel, invalid JSON",
        "Failed to append to channel, msg.MsgType does not match payloadType",
    ),
    (
        "channelreadmsg",
        "Failed to read from channel, invalid JSON",
        "Failed to read from channel, msg.MsgType does not match payloadType",
    ),
    (
        "closefailedmsg",
        "Failed to close failed, invalid JSON",
        "Failed to close process as failed, msg.MsgType does not match payloadType",
    ),
    (
        "closesuccessfulmsg",
        "Failed to close successful, invalid JSON",
        "Failed to close process as successful, msg.MsgType does not match payloadType",
    ),
    (
        "createsnapshotmsg",
        "Failed to create snapshot, invalid JSON",
        "Failed to create snapshot, msg.MsgType does not match payloadType",
    ),
    (
        "getattributemsg",
        "Failed to get attribute, invalid JSON",
        "Failed to get attribute, msg.MsgType does not match payloadType",
    ),
    (
        "getblueprintdefinitionmsg",
        "Failed to get blueprint definition, invalid JSON",
        "Failed to get blueprint definition, msg.MsgType does not match payloadType",
    ),
    (
        "getblueprintdefinitionsmsg",
        "Failed to get blueprint definitions, invalid JSON",
        "Failed to get blueprint definitions, msg.MsgType does not match payloadType",
    ),
    (
        "getblueprinthistorymsg",
        "Failed to get blueprint history, invalid JSON",
        "Failed to get blueprint history, msg.MsgType does not match payloadType",
    ),
    (
        "getblueprintmsg",
        "Failed to get blueprint, invalid JSON",
        "Failed to get blueprint, msg.MsgType does not match payloadType",
    ),
    (
        "getblueprintsmsg",
        "Failed to get blueprints, invalid JSON",
        "Failed to get blueprints, msg.MsgType does not match payloadType",
    ),
    (
        "getclustermsg",
        "Failed to get cluster info, invalid JSON",
        "Failed to get cluster info, msg.MsgType does not match payloadType",
    ),
    (
        "getcoloniesmsg",
        "Failed to get colonies, invalid JSON",
        "Failed to get colonies, msg.MsgType does not match payloadType",
    ),
    (
        "getcolonymsg",
        "Failed to get colony, invalid JSON",
        "Failed to get colony, msg.MsgType does not match payloadType",
    ),
    (
        "getcolonystatsmsg",
        "Failed to get colony statistics, invalid JSON",
        "Failed to get colony statistics, msg.MsgType does not match payloadType",
    ),
    (
        "getcronmsg",
        "Failed to get cron, invalid JSON",
        "Failed to get cron, msg.MsgType does not match payloadType",
    ),
    (
        "getcronsmsg",
        "Failed to get crons, invalid JSON",
        "Failed to get crons, msg.MsgType does not match payloadType",
    ),
    (
        "getexecutorbyidmsg",
        "Failed to get executor by ID, invalid JSON",
        "Failed to get executor by ID, msg.MsgType does not match payloadType",
    ),
    (
        "getexecutormsg",
        "Failed to get executor, invalid JSON",
        "Failed to get executor, msg.MsgType does not match payloadType",
    ),
    (
        "getexecutorsmsg",
        "Failed to get executors, invalid JSON",
        "Failed to get executors, msg.MsgType does not match payloadType",
    ),
    (
        "getfilelabelsmsg",
        "Failed to get files, invalid JSON",
        "Failed to get files, msg.MsgType does not match payloadType",
    ),
    (
        "getfilemsg",
        "Failed to add log, invalid JSON",
        "Failed to get file, msg.MsgType does not match payloadType",
    ),
    (
        "getfilesmsg",
        "Failed to get files, invalid JSON",
        "Failed to get files, msg.MsgType does not match payloadType",
    ),
    (
        "getfunctionsmsg",
        "Failed to get function, invalid JSON",
        "Failed to get function, msg.MsgType does not match payloadType",
    ),
    (
        "getgeneratormsg",
        "Failed to get generator, invalid JSON",
        "Failed to get generator, msg.MsgType does not match payloadType",
    ),
    (
        "getgeneratorsmsg",
        "Failed to get generators, invalid JSON",
        "Failed to get generators, msg.MsgType does not match payloadType",
    ),
    (
        "getlocationmsg",
        "Failed to get location, invalid JSON",
        "Failed to get location, msg.MsgType does not match payloadType",
    ),
    (
        "getlocationsmsg",
        "Failed to get locations, invalid JSON",
        "Failed to get locations, msg.MsgType does not match payloadType",
    ),
    (
        "getlogsmsg",
        "Failed to get logs, invalid JSON",
        "Failed to get logs, msg.MsgType does not match payloadType",
    ),
    (
        "getpausestatusmsg",
        "Failed to get pause status, invalid JSON",
        "Failed to get pause status, msg.MsgType does not match payloadType",
    ),
    (
        "getprocessesmsg",
        "Failed to get processes, invalid JSON",
        "Failed to get processes, msg.MsgType does not match payloadType",
    ),
    (
        "getprocessgraphmsg",
        "Failed to get processgraph, invalid JSON",
        "Failed to get processgraph, msg.MsgType does not match payloadType",
    ),
    (
        "getprocessgraphsmsg",
        "Failed to get processgraphs, invalid JSON",
        "Failed to get processgraphs, msg.MsgType does not match payloadType",
    ),
    (
        "getprocesshistmsg",
        "Failed to get process hist, invalid JSON",
        "Failed to get process history, msg.MsgType does not match payloadType",
    ),
    (
        "getprocessmsg",
        "Failed to get process, invalid JSON",
        "Failed to get process, msg.MsgType does not match payloadType",
    ),
    (
        "getsnapshotmsg",
        "Failed to get snapshot, invalid JSON",
        "Failed to get snapshot, msg.MsgType does not match payloadType",
    ),
    (
        "getsnapshotsmsg",
        "Failed to get snapshots, invalid JSON",
        "Failed to get snapshots, msg.MsgType does not match payloadType",
    ),
    (
        "getstatisticsmsg",
        "Failed to get statistics, invalid JSON",
        "Failed to get server version, msg.MsgType does not match payloadType",
    ),
    (
        "getuserbyidmsg",
        "Failed to get user by ID, invalid JSON",
        "Failed to get user by ID, msg.MsgType does not match payloadType",
    ),
    (
        "getusermsg",
        "Failed to get user, invalid JSON",
        "Failed to get user, msg.MsgType does not match payloadType",
    ),
    (
        "getusersmsg",
        "Failed to get users, invalid JSON",
        "Failed to get users, msg.MsgType does not match payloadType",
    ),
    (
        "packgeneratormsg",
        "Failed to inc generator, invalid JSON",
        "Failed to increment generator, msg.MsgType does not match payloadType",
    ),
    (
        "pauseassignmentsmsg",
        "Failed to pause assignments, invalid JSON",
        "Failed to pause assignments, msg.MsgType does not match payloadType",
    ),
    (
        "reconcileblueprintmsg",
        "Failed to reconcile blueprint, invalid JSON",
        "Failed to reconcile blueprint, msg.MsgType does not match payloadType",
    ),
    (
        "rejectexecutormsg",
        "Failed to reject executor, invalid JSON",
        "Failed to reject executor, msg.MsgType does not match payloadType",
    ),
    (
        "removeallprocessesmsg",
        "Failed to remove all processes, invalid JSON",
        "Failed to remove all processes, msg.MsgType does not match payloadType",
    ),
    (
        "removeallprocessgraphsmsg",
        "Failed to remove all processgraphs, invalid JSON",
        "Failed to remove all processgraphs, msg.MsgType does not match payloadType",
    ),
    (
        "removeallsnapshotmsg",
        "Failed to remove snapshot, invalid JSON",
        "Failed to remove snapshot, msg.MsgType does not match payloadType",
    ),
    (
        "removeblueprintdefinitionmsg",
        "Failed to remove blueprint definition, invalid JSON",
        "Failed to remove blueprint definition, msg.MsgType does not match payloadType",
    ),
    (
        "removeblueprintmsg",
        "Failed to remove blueprint, invalid JSON",
        "Failed to remove blueprint, msg.MsgType does not match payloadType",
    ),
    (
        "removecolonymsg",
        "Failed to remove colony, invalid JSON",
        "Failed to remove colony, msg.MsgType does not match payloadType",
    ),
    (
        "removecronmsg",
        "Failed to remove cron, invalid JSON",
        "Failed to remove cron, msg.MsgType does not match payloadType",
    ),
    (
        "removeexecutormsg",
        "Failed to remove executor, invalid JSON",
        "Failed to remove executor, msg.MsgType does not match payloadType",
    ),
    (
        "removefilemsg",
        "Failed to remove file, invalid JSON",
        "Failed to remove file, msg.MsgType does not match payloadType",
    ),
    (
        "removefunctionmsg",
        "Failed to remove function, invalid JSON",
        "Failed to remove function, msg.MsgType does not match payloadType",
    ),
    (
        "removegeneratormsg",
        "Failed to remove generator, invalid JSON",
        "Failed to remove generator, msg.MsgType does not match payloadType",
    ),
    (
        "removelocationmsg",
        "Failed to remove location, invalid JSON",
        "Failed to remove location, msg.MsgType does not match payloadType",
    ),
    (
        "removeprocessgraphmsg",
        "Failed to remove processgraph, invalid JSON",
        "Failed to remove processgraph, msg.MsgType does not match payloadType",
    ),
    (
        "removeprocessmsg",
        "Failed to remove process, invalid JSON",
        "Failed to remove process, msg.MsgType does not match payloadType",
    ),
    (
        "removesnapshotmsg",
        "Failed to remove snapshot, invalid JSON",
        "Failed to remove snapshot, msg.MsgType does not match payloadType",
    ),
    (
        "removeusermsg",
        "Failed to remove user, invalid JSON",
        "Failed to remove user, msg.MsgType does not match payloadType",
    ),
    (
        "reportallocationmsg",
        "Failed to report allocation, invalid JSON",
        "Failed to report allocation, msg.MsgType does not match payloadType",
    ),
    (
        "resolvegeneratormsg",
        "Failed to resolve generator, invalid JSON",
        "Failed to resolve generator, msg.MsgType does not match payloadType",
    ),
    (
        "resumeassignmentsmsg",
        "Failed to resume assignments, invalid JSON",
        "Failed to resume assignments, msg.MsgType does not match payloadType",
    ),
    (
        "runcronmsg",
        "Failed to run cron, invalid JSON",
        "Failed to run cron, msg.MsgType does not match payloadType",
    ),
    (
        "searchlogsmsg",
        "Failed to search logs, invalid JSON",
        "Failed to get logs, msg.MsgType does not match payloadType",
    ),
    (
        "setoutputmsg",
        "Failed to set output, invalid JSON",
        "Failed to set output, msg.MsgType does not match payloadType",
    ),
    (
        "submitfuncspecmsg",
        "Failed to submit process, invalid JSON",
        "Failed to submit process spec, msg.MsgType does not match payloadType",
    ),
    (
        "submitworkflowspecmsg",
        "Failed to submit workkflow, invalid JSON",
        "Failed to submit workflow, msg.MsgType does not match payloadType",
    ),
    (
        "updateblueprintmsg",
        "Failed to update blueprint, invalid JSON",
        "Failed to update blueprint, msg.MsgType does not match payloadType",
    ),
    (
        "updateblueprintstatusmsg",
        "Failed to update blueprint status, invalid JSON",
        "Failed to update blueprint status, msg.MsgType does not match payloadType",
    ),
    (
        "updateexecutormsg",
        "Failed to update executor, invalid JSON",
        "Failed to update executor, msg.MsgType does not match payloadType",
    ),
];

impl From<ColonyosFailure<'_>> for ApiError {
    fn from(failure: ColonyosFailure<'_>) -> ApiError {
        ApiError::new(failure.code(), failure.message())
    }
}
