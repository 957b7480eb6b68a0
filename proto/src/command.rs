//! Replicated commands: what the Raft log carries and the state machine applies.
//!
//! A command is fully determined when proposed: the proposer stamps `now_nanos` (the only
//! clock `apply` ever sees) and `request_id` (the seed of every id the command creates), and
//! the API layer has already recovered `caller_id` from the signature. Authorization that
//! depends on state is decided inside `apply`, so every replica decides the same way.

use crate::blueprint::{Blueprint, BlueprintDefinition};
use crate::colony::{Colony, User};
use crate::cron::{Cron, Generator};
use crate::error::ApiError;
use crate::executor::{Allocations, Capabilities, Executor};
use crate::file::{File, Snapshot};
use crate::function::{Function, Location};
use crate::process::{Attribute, FunctionSpec, Process};
use crate::workflow::{ProcessGraph, WorkflowSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One entry of replicated state change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Proposer's wall clock in Unix nanoseconds.
    pub now_nanos: i64,
    /// 32 hex chars chosen by the proposer; ids of new objects derive from it.
    pub request_id: String,
    /// The recovered id of the signer, or empty for commands the node itself proposes.
    pub caller_id: String,
    pub op: Op,
}

/// The state change a command asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Records the server owner's id if none is recorded yet.
    InitServer {
        server_id: String,
    },
    AddColony(Colony),
    RemoveColony {
        colonyname: String,
    },
    AddExecutor(Box<Executor>),
    /// Approve (`approved = true`) or reject an executor.
    SetExecutorApproval {
        colonyname: String,
        executorname: String,
        approved: bool,
    },
    RemoveExecutor {
        colonyname: String,
        executorname: String,
    },
    AddUser(User),
    RemoveUser {
        colonyname: String,
        name: String,
    },
    Submit(Box<FunctionSpec>),
    /// Assign the best waiting process the calling executor can run. `None` = unlimited.
    Assign {
        colonyname: String,
        cpu_millis: Option<i64>,
        mem_mib: Option<i64>,
    },
    CloseSuccessful {
        processid: String,
        out: Vec<Value>,
    },
    CloseFailed {
        processid: String,
        errors: Vec<String>,
    },
    SetOutput {
        processid: String,
        out: Vec<Value>,
    },
    CancelProcess {
        processid: String,
    },
    RemoveProcess {
        processid: String,
    },
    RemoveAllProcesses {
        colonyname: String,
        state: i32,
    },
    AddAttribute(Attribute),
    SubmitWorkflow(Box<WorkflowSpec>),
    RemoveProcessGraph {
        processgraphid: String,
    },
    RemoveAllProcessGraphs {
        colonyname: String,
        state: i32,
    },
    CancelProcessGraph {
        processgraphid: String,
    },
    /// Adds a process under a running parent of a graph (`insert`: between the parent and
    /// its children; otherwise as an extra child, before `childprocessid` if given).
    AddChild {
        processgraphid: String,
        parentprocessid: String,
        childprocessid: String,
        spec: Box<FunctionSpec>,
        insert: bool,
    },
    AddFunction(Box<Function>),
    RemoveFunction {
        functionid: String,
    },
    AddLog {
        processid: String,
        message: String,
    },
    AddExecutorLog {
        colonyname: String,
        executorname: String,
        message: String,
    },
    AddLocation(Location),
    RemoveLocation {
        colonyname: String,
        name: String,
    },
    /// Pause (`paused = true`) or resume assignments in a colony.
    SetPaused {
        colonyname: String,
        paused: bool,
    },
    UpdateExecutor {
        colonyname: String,
        executorname: String,
        capabilities: Capabilities,
    },
    ReportAllocation {
        colonyname: String,
        executorname: String,
        allocations: Allocations,
    },
    /// The calling user of `colonyname` takes the new id `userid`.
    ChangeUserId {
        colonyname: String,
        userid: String,
    },
    /// The calling executor of `colonyname` takes the new id `executorid`.
    ChangeExecutorId {
        colonyname: String,
        executorid: String,
    },
    ChangeColonyId {
        colonyname: String,
        colonyid: String,
    },
    ChangeServerId {
        serverid: String,
    },
    AddCron(Box<Cron>),
    /// Starts the cron's workflow now (respecting `waitforprevprocessgraph`).
    RunCron {
        cronid: String,
    },
    RemoveCron {
        cronid: String,
    },
    AddGenerator(Box<Generator>),
    PackGenerator {
        generatorid: String,
        arg: String,
    },
    RemoveGenerator {
        generatorid: String,
    },
    ChannelAppend {
        processid: String,
        name: String,
        sequence: i64,
        inreplyto: i64,
        payload: Vec<u8>,
        payloadtype: String,
    },
    AddFile(Box<File>),
    /// A revision by id, or every revision of `label` + `name`.
    RemoveFile {
        colonyname: String,
        fileid: String,
        label: String,
        name: String,
    },
    CreateSnapshot {
        colonyname: String,
        label: String,
        name: String,
    },
    /// By id, or by name.
    RemoveSnapshot {
        colonyname: String,
        snapshotid: String,
        name: String,
    },
    RemoveAllSnapshots {
        colonyname: String,
    },
    AddBlueprintDefinition(Box<BlueprintDefinition>),
    RemoveBlueprintDefinition {
        colonyname: String,
        name: String,
    },
    AddBlueprint(Box<Blueprint>),
    /// Replaces a blueprint; a changed spec (or `force`) bumps its generation and starts a
    /// reconciliation.
    UpdateBlueprint {
        blueprint: Box<Blueprint>,
        force: bool,
    },
    RemoveBlueprint {
        colonyname: String,
        name: String,
    },
    UpdateBlueprintStatus {
        colonyname: String,
        name: String,
        status: serde_json::Map<String, Value>,
    },
    /// Starts a reconciliation now (`force`: bumping the generation first).
    ReconcileBlueprint {
        colonyname: String,
        name: String,
        force: bool,
    },
    /// The leader's periodic cleanup as of `now_nanos`: removes successful processes and
    /// workflows and log lines older than `retention_seconds` (0: none), and executors not
    /// heard from for `stale_executor_seconds` (0: none), re-queueing what they ran.
    Housekeep {
        retention_seconds: i64,
        stale_executor_seconds: i64,
    },
    /// The leader saw these executors' node silent for too long: their running processes
    /// go back to the queue (keeping their retry count); the executors stay registered.
    ReleaseExecutors {
        executor_ids: Vec<String>,
    },
    /// The leader's periodic clock tick: expires deadlines and starts due crons and
    /// generators as of `now_nanos`.
    Tick,
    /// The autopilot removed this peer's node: its certificate is no longer accepted.
    RevokeNode {
        peer_id: String,
    },
    /// `Assign` for one long-poll `key` (apply level 1): the first of its commands that
    /// assigns a process records that answer under `key`, and every later one with the same
    /// key gets it again instead of a second process. So a long-poll can propose as often as
    /// it must (another leader, an unknown outcome) and still get at most one process, and
    /// never lose one assigned to it.
    AssignFor {
        key: String,
        colonyname: String,
        cpu_millis: Option<i64>,
        mem_mib: Option<i64>,
    },
    /// `AddLog` that also files the line under the executor that wrote it (apply level 2), so
    /// that an executor's log holds the lines it added to its processes, as in ColonyOS.
    AddProcessLog {
        processid: String,
        message: String,
    },
}

/// The successful result of applying a command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    Done,
    ServerId(String),
    Colony(Colony),
    Executor(Box<Executor>),
    User(User),
    Process(Box<Process>),
    Attribute(Attribute),
    ProcessGraph(Box<ProcessGraph>),
    Function(Box<Function>),
    Location(Location),
    /// `Assign` found the colony's assignments paused.
    AssignmentsPaused,
    /// `Assign` found nothing the executor can run.
    NothingToAssign,
    Cron(Box<Cron>),
    BlueprintDefinition(Box<BlueprintDefinition>),
    Blueprint(Box<Blueprint>),
    File(Box<File>),
    Snapshot(Box<Snapshot>),
    Generator(Box<Generator>),
    /// `Tick` expired this many deadlines.
    Expired(u64),
}

/// What `apply` returns for a command: a reply or an error naming what was refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response(pub Result<Reply, ApiError>);

/// The payload of one raft log entry: commands proposed concurrently on the leader, applied
/// in order as if proposed one by one. Each command keeps its own request id, response and
/// deduplication.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch(pub Vec<Command>);
