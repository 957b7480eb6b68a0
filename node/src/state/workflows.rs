//! Apply logic for workflows (process graphs): submission, release of children whose parents
//! all succeeded, failure and cancellation of a whole graph, children added at run time,
//! removal, and the graph state derived from its processes.
//!
//! `processes::save` records every state change of a graph member in `Ctx::graph_changes`;
//! after a command's own work `apply` calls `settle` until no change is left. So every path
//! that changes a process (close, the tick's expiry, executor removal, cancel) has the same
//! workflow consequences, decided in one place.

use super::colonies::scan_all;
use super::keys::{self, Table};
use super::processes::{self, load, read_count};
use super::tx::{StateRead, StoreError};
use super::{auth, get_json, refuse_unless, validate, Ctx, Outcome};
use proto::command::Reply;
use proto::process::{process_state as ps, PRIORITY_STEP_NANOS};
use proto::{ApiError, FunctionSpec, GoTime, Process, ProcessGraph, WorkflowSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Most processes in one workflow (submitted, plus children added at run time): every change
/// of a member may read the graph's member list, so its size bounds that work.
pub const WORKFLOW_PROCESSES_MAX: usize = 1024;

/// Error of the processes a failed process leaves unable to run.
const PARENT_FAILED_ERROR: &str = "a process of the workflow failed";

/// A stored workflow: the wire object (without layout) and how many members are in each state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct GraphRecord {
    pub graph: ProcessGraph,
    /// Members per process state (WAITING..=CANCELLED).
    pub counts: [i64; 5],
}

/// A state change of a workflow member (`None`: the process did not or no longer exists).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GraphChange {
    pub graphid: String,
    pub processid: String,
    pub old: Option<i32>,
    pub new: Option<i32>,
}

/// The workflow state ColonyOS derives from its members' states.
fn derive_state(counts: &[i64; 5], members: usize) -> i32 {
    let count = |state: i32| counts[state as usize];
    if count(ps::FAILED) > 0 {
        ps::FAILED
    } else if count(ps::CANCELLED) > 0 {
        ps::CANCELLED
    } else if members > 0 && count(ps::SUCCESS) == members as i64 {
        ps::SUCCESS
    } else if count(ps::RUNNING) + count(ps::SUCCESS) > 0 {
        ps::RUNNING
    } else {
        ps::WAITING
    }
}

pub(crate) fn load_record<R: StateRead + ?Sized>(
    state: &R,
    id: &str,
) -> Result<Option<GraphRecord>, StoreError> {
    get_json(state, Table::Graphs, id.as_bytes())
}

/// Writes `new` (or deletes the record when `None`) with its listing entry and counters.
fn save_graph<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    old: Option<&ProcessGraph>,
    new: Option<&GraphRecord>,
) -> Result<(), StoreError> {
    let index = |g: &ProcessGraph| {
        let submitted = g.submissiontime.unix_nanos().unwrap_or(0);
        keys::by_state(&g.colonyname, g.state, submitted, &g.processgraphid)
    };
    let old_key = old.map(index);
    let new_key = new.map(|r| index(&r.graph));
    if old_key != new_key {
        if let (Some(key), Some(g)) = (old_key, old) {
            ctx.tx.delete(Table::GraphsByState, key);
            add_graph_count(ctx, &g.colonyname, g.state, -1)?;
        }
        if let (Some(key), Some(r)) = (new_key, new) {
            ctx.tx.put(Table::GraphsByState, key, Vec::new());
            add_graph_count(ctx, &r.graph.colonyname, r.graph.state, 1)?;
        }
    }
    match (old, new) {
        (_, Some(r)) => ctx.put_json(
            Table::Graphs,
            r.graph.processgraphid.clone().into_bytes(),
            r,
        ),
        (Some(g), None) => ctx
            .tx
            .delete(Table::Graphs, g.processgraphid.clone().into_bytes()),
        (None, None) => {}
    }
    Ok(())
}

fn add_graph_count<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    state: i32,
    delta: i64,
) -> Result<(), StoreError> {
    let key = keys::graph_count(colony, state);
    let next = read_count(&ctx.tx, &key)? + delta;
    assert!(
        next >= 0,
        "workflow count of {colony}/{state} went negative"
    );
    ctx.tx.put(Table::Meta, key, next.to_le_bytes().to_vec());
    Ok(())
}

/// Applies recorded member changes to their workflows: counts and state, children released,
/// the rest of a graph failed once one member failed. Changes it causes are recorded again
/// and settled by the next call.
pub(super) fn settle<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    changes: Vec<GraphChange>,
) -> Result<(), StoreError> {
    let mut by_graph: BTreeMap<String, Vec<GraphChange>> = BTreeMap::new();
    for change in changes {
        by_graph
            .entry(change.graphid.clone())
            .or_default()
            .push(change);
    }
    let now = ctx.now();
    for (graphid, changes) in by_graph {
        // A graph being removed is gone before its members.
        let Some(mut record) = load_record(&ctx.tx, &graphid)? else {
            continue;
        };
        let before = record.graph.clone();
        let failed_before = record.counts[ps::FAILED as usize] > 0;
        for change in &changes {
            if let Some(state) = change.old {
                record.counts[state as usize] -= 1;
            }
            if let Some(state) = change.new {
                record.counts[state as usize] += 1;
            }
        }
        for change in changes.iter().filter(|c| c.new == Some(ps::SUCCESS)) {
            let p = refuse_is_corruption(load(ctx, &change.processid)?)?;
            for child in &p.children {
                release_if_ready(ctx, child)?;
            }
        }
        if !failed_before && record.counts[ps::FAILED as usize] > 0 {
            for id in &record.graph.processids {
                let p = refuse_is_corruption(load(ctx, id)?)?;
                if p.state == ps::WAITING {
                    let failed = processes::fail(&p, now, vec![PARENT_FAILED_ERROR.into()]);
                    processes::save(ctx, Some(&p), Some(&failed))?;
                }
            }
        }
        let graph = &mut record.graph;
        graph.state = derive_state(&record.counts, graph.processids.len());
        if graph.state != ps::WAITING && graph.starttime.is_zero() {
            graph.starttime = GoTime::from_unix_nanos(now);
        }
        if ps::is_terminal(graph.state) && graph.endtime.is_zero() {
            graph.endtime = GoTime::from_unix_nanos(now);
        }
        save_graph(ctx, Some(&before), Some(&record))?;
    }
    Ok(())
}

/// A member named by a graph must exist: a missing one means the store is inconsistent.
fn refuse_is_corruption<T>(found: Result<T, ApiError>) -> Result<T, StoreError> {
    found.map_err(|refusal| StoreError(format!("workflow member missing: {}", refusal.message)))
}

/// Lets `id` be assigned if it waits for parents that have all succeeded.
fn release_if_ready<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    id: &str,
) -> Result<(), StoreError> {
    let child = refuse_is_corruption(load(ctx, id)?)?;
    if child.state != ps::WAITING || !child.waitforparents {
        return Ok(());
    }
    for parent in &child.parents {
        if refuse_is_corruption(load(ctx, parent)?)?.state != ps::SUCCESS {
            return Ok(());
        }
    }
    let released = Process {
        waitforparents: false,
        ..child.clone()
    };
    processes::save(ctx, Some(&child), Some(&released))
}

/// The input of a workflow member at assign time: its parents' outputs, in parent order.
/// A process without parents keeps the input it was submitted with.
pub(super) fn input_of<R: StateRead + ?Sized>(
    ctx: &Ctx<'_, R>,
    p: &Process,
) -> Result<Vec<Value>, StoreError> {
    if p.parents.is_empty() {
        return Ok(p.input.clone());
    }
    let mut input = Vec::new();
    for parent in &p.parents {
        input.extend(refuse_is_corruption(load(ctx, parent)?)?.output);
    }
    Ok(input)
}

/// A spec of a workflow as ColonyOS stores it: in the workflow's colony, `maxexectime` 0
/// meaning none, then the checks of any submitted spec.
fn member_spec(colony: &str, spec: &FunctionSpec) -> Result<FunctionSpec, ApiError> {
    let mut spec = spec.clone();
    spec.conditions.colonyname = colony.to_string();
    if spec.maxexectime == 0 {
        spec.maxexectime = -1;
    }
    validate::spec(&spec)
}

/// Checks a workflow without state: colony, size, unique node names, known and acyclic
/// dependencies. Returns the specs normalized.
pub fn validate_workflow(workflow: &WorkflowSpec) -> Result<Vec<FunctionSpec>, ApiError> {
    validate::name("colonyname", &workflow.colonyname)?;
    let specs = &workflow.functionspecs;
    if specs.is_empty() {
        return Err(ApiError::bad_request("workflow has no function specs"));
    }
    if specs.len() > WORKFLOW_PROCESSES_MAX {
        return Err(ApiError::bad_request(format!(
            "workflow has {} function specs, more than the limit of {WORKFLOW_PROCESSES_MAX}",
            specs.len()
        )));
    }
    let mut index = BTreeMap::new();
    for (i, spec) in specs.iter().enumerate() {
        validate::name("functionspecs[].nodename", &spec.nodename)?;
        if index.insert(spec.nodename.as_str(), i).is_some() {
            return Err(ApiError::bad_request(format!(
                "duplicate nodename {:?} in workflow",
                spec.nodename
            )));
        }
    }
    for spec in specs {
        for dependency in &spec.conditions.dependencies {
            if !index.contains_key(dependency.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "{:?} depends on {dependency:?}, which is not a node of the workflow",
                    spec.nodename
                )));
            }
        }
    }
    // Kahn's algorithm: whatever is never freed of its parents lies on a cycle.
    let mut unfinished: Vec<usize> = specs
        .iter()
        .map(|s| s.conditions.dependencies.len())
        .collect();
    let mut ready: Vec<usize> = (0..specs.len()).filter(|i| unfinished[*i] == 0).collect();
    let mut ordered = 0;
    while let Some(done) = ready.pop() {
        ordered += 1;
        for (i, spec) in specs.iter().enumerate() {
            for dependency in &spec.conditions.dependencies {
                if index[dependency.as_str()] == done {
                    unfinished[i] -= 1;
                    if unfinished[i] == 0 {
                        ready.push(i);
                    }
                }
            }
        }
    }
    if ordered < specs.len() {
        return Err(ApiError::bad_request("workflow dependencies form a cycle"));
    }
    specs
        .iter()
        .map(|spec| member_spec(&workflow.colonyname, spec))
        .collect()
}

fn new_id<R: StateRead + ?Sized>(ctx: &Ctx<'_, R>, what: &str) -> String {
    proto::crypto::sha3_hex(format!("{}/{what}", ctx.command.request_id).as_bytes())
}

/// Who starts a workflow, and what its roots get besides their specs.
pub(super) struct Start<'a> {
    pub initiatorid: &'a str,
    pub initiatorname: &'a str,
    /// Distinguishes workflows started by one command (a tick may start several).
    pub seed: &'a str,
    /// Input of the roots (a cron's previous leaves' output).
    pub root_input: Vec<Value>,
    /// Replaces the roots' args, clearing their kwargs (a generator's packed args).
    pub root_args: Option<Vec<Value>>,
}

pub(super) fn submit<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    workflow: &WorkflowSpec,
) -> Outcome<Reply> {
    let specs = refuse_unless!(validate_workflow(workflow));
    let colony = workflow.colonyname.as_str();
    refuse_unless!(auth::colony(&ctx.tx, colony)?);
    let member = refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    let caller = ctx.caller().to_string();
    let start = Start {
        initiatorid: &caller,
        initiatorname: member.name(),
        seed: "",
        root_input: Vec::new(),
        root_args: None,
    };
    let graph = refuse_unless!(create(ctx, colony, specs, start)?);
    Ok(Ok(Reply::ProcessGraph(Box::new(graph))))
}

/// Creates a workflow of validated `specs` in `colony`; returns it with its layout.
pub(super) fn create<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    specs: Vec<FunctionSpec>,
    start: Start<'_>,
) -> Outcome<ProcessGraph> {
    let now = ctx.now();
    let graphid = new_id(ctx, &format!("{}graph", start.seed));
    if load_record(&ctx.tx, &graphid)?.is_some() {
        return Ok(Err(ApiError::conflict(
            "workflow id collision: request id reused",
        )));
    }
    let ids: Vec<String> = (0..specs.len())
        .map(|i| new_id(ctx, &format!("{}process/{i}", start.seed)))
        .collect();
    let id_of: BTreeMap<&str, &str> = specs
        .iter()
        .zip(&ids)
        .map(|(spec, id)| (spec.nodename.as_str(), id.as_str()))
        .collect();
    let mut members: Vec<Process> = specs
        .iter()
        .zip(&ids)
        .map(|(spec, id)| {
            let root = spec.conditions.dependencies.is_empty();
            let mut spec = spec.clone();
            if let (true, Some(args)) = (root, &start.root_args) {
                spec.args = args.clone();
                spec.kwargs = None;
            }
            Process {
                processid: id.clone(),
                initiatorid: start.initiatorid.to_string(),
                initiatorname: start.initiatorname.to_string(),
                state: ps::WAITING,
                prioritytime: now.saturating_sub(spec.priority * PRIORITY_STEP_NANOS),
                submissiontime: GoTime::from_unix_nanos(now),
                waitdeadline: processes::deadline_after(now, spec.maxwaittime),
                waitforparents: !root,
                parents: spec
                    .conditions
                    .dependencies
                    .iter()
                    .map(|d| id_of[d.as_str()].to_string())
                    .collect(),
                processgraphid: graphid.clone(),
                input: if root {
                    start.root_input.clone()
                } else {
                    Vec::new()
                },
                spec,
                ..Process::default()
            }
        })
        .collect();
    for i in 0..members.len() {
        let parents = members[i].parents.clone();
        for parent in parents {
            let at = ids
                .iter()
                .position(|id| *id == parent)
                .expect("parent in graph");
            members[at].children.push(ids[i].clone());
        }
    }
    let record = GraphRecord {
        graph: ProcessGraph {
            processgraphid: graphid,
            initiatorid: start.initiatorid.to_string(),
            initiatorname: start.initiatorname.to_string(),
            colonyname: colony.to_string(),
            rootprocessids: members
                .iter()
                .filter(|p| p.parents.is_empty())
                .map(|p| p.processid.clone())
                .collect(),
            state: ps::WAITING,
            submissiontime: GoTime::from_unix_nanos(now),
            processids: ids,
            ..ProcessGraph::default()
        },
        counts: [0; 5],
    };
    save_graph(ctx, None, Some(&record))?;
    for p in &members {
        if get_json::<Process, _>(&ctx.tx, Table::Processes, p.processid.as_bytes())?.is_some() {
            return Ok(Err(ApiError::conflict(
                "process id collision: request id reused",
            )));
        }
        processes::save(ctx, None, Some(p))?;
    }
    Ok(Ok(record.graph.with_layout(&members)))
}

/// The outputs of a workflow's leaves (processes without children), in member order.
pub(super) fn leaf_output<R: StateRead + ?Sized>(
    ctx: &Ctx<'_, R>,
    record: &GraphRecord,
) -> Result<Vec<Value>, StoreError> {
    let mut output = Vec::new();
    for id in &record.graph.processids {
        let p = refuse_is_corruption(load(ctx, id)?)?;
        if p.children.is_empty() {
            output.extend(p.output);
        }
    }
    Ok(output)
}

/// The workflow `id` if the caller is a member of its colony.
fn member_graph<R: StateRead + ?Sized>(ctx: &Ctx<'_, R>, id: &str) -> Outcome<GraphRecord> {
    let Some(record) = load_record(&ctx.tx, id)? else {
        return Ok(Err(ApiError::not_found(format!(
            "workflow with id {id:?} not found"
        ))));
    };
    let colony = &record.graph.colonyname;
    refuse_unless!(auth::require_member(&ctx.tx, colony, ctx.caller(), true)?);
    Ok(Ok(record))
}

pub(super) fn cancel<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, id: &str) -> Outcome<Reply> {
    let record = refuse_unless!(member_graph(ctx, id)?);
    if ps::is_terminal(record.graph.state) {
        return Ok(Err(ApiError::bad_request(format!(
            "workflow {id:?} has already ended (state {})",
            record.graph.state
        ))));
    }
    let now = ctx.now();
    for pid in &record.graph.processids {
        let p = refuse_is_corruption(load(ctx, pid)?)?;
        if p.state == ps::WAITING || p.state == ps::RUNNING {
            let cancelled = Process {
                state: ps::CANCELLED,
                endtime: GoTime::from_unix_nanos(now),
                ..p.clone()
            };
            processes::save(ctx, Some(&p), Some(&cancelled))?;
        }
    }
    Ok(Ok(Reply::Done))
}

/// Deletes a workflow and its processes.
pub(super) fn delete<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    record: &GraphRecord,
) -> Result<(), StoreError> {
    save_graph(ctx, Some(&record.graph), None)?;
    for pid in &record.graph.processids {
        let p = refuse_is_corruption(load(ctx, pid)?)?;
        processes::save(ctx, Some(&p), None)?;
    }
    Ok(())
}

pub(super) fn remove<R: StateRead + ?Sized>(ctx: &mut Ctx<'_, R>, id: &str) -> Outcome<Reply> {
    let record = refuse_unless!(member_graph(ctx, id)?);
    if record.counts[ps::RUNNING as usize] > 0 {
        return Ok(Err(ApiError::bad_request(format!(
            "workflow {id:?} has running processes; cancel it first"
        ))));
    }
    delete(ctx, &record)?;
    Ok(Ok(Reply::Done))
}

pub(super) fn remove_all<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    state: i32,
) -> Outcome<Reply> {
    refuse_unless!(auth::require_colony_owner(&ctx.tx, colony, ctx.caller())?);
    let state = match state {
        ps::NOTSET => None,
        ps::WAITING | ps::RUNNING | ps::SUCCESS | ps::FAILED | ps::CANCELLED => Some(state),
        other => {
            return Ok(Err(ApiError::bad_request(format!(
                "invalid workflow state {other}"
            ))))
        }
    };
    remove_matching(ctx, colony, state)?;
    Ok(Ok(Reply::Done))
}

/// Deletes every workflow of `colony` in `state` (all states when `None`) with its processes.
pub(super) fn remove_matching<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    colony: &str,
    state: Option<i32>,
) -> Result<(), StoreError> {
    let prefix = keys::by_state_prefix(colony, state);
    for (key, _) in scan_all(ctx, Table::GraphsByState, &prefix)? {
        let id = keys::trailing_id(&key).to_string();
        let record = load_record(&ctx.tx, &id)?
            .ok_or_else(|| StoreError(format!("listed workflow {id} missing")))?;
        delete(ctx, &record)?;
    }
    Ok(())
}

/// `addchildmsg`.
pub(super) fn add_child<R: StateRead + ?Sized>(
    ctx: &mut Ctx<'_, R>,
    graphid: &str,
    parentid: &str,
    childid: &str,
    spec: &FunctionSpec,
    insert: bool,
) -> Outcome<Reply> {
    let record = refuse_unless!(member_graph(ctx, graphid)?);
    let spec = refuse_unless!(member_spec(&record.graph.colonyname, spec));
    if record.graph.processids.len() >= WORKFLOW_PROCESSES_MAX {
        return Ok(Err(ApiError::bad_request(format!(
            "workflow {graphid:?} already has {WORKFLOW_PROCESSES_MAX} processes"
        ))));
    }
    let parent = refuse_unless!(load(ctx, parentid)?);
    if parent.processgraphid != graphid {
        return Ok(Err(ApiError::bad_request(format!(
            "process {parentid:?} is not part of workflow {graphid:?}"
        ))));
    }
    if parent.state != ps::RUNNING || parent.assignedexecutorid != ctx.caller() {
        return Ok(Err(ApiError::forbidden(format!(
            "Access denied, process {parentid:?} is not running on the caller"
        ))));
    }
    let now = ctx.now();
    let mut child = Process {
        processid: new_id(ctx, "child"),
        initiatorid: ctx.caller().to_string(),
        initiatorname: parent.initiatorname.clone(),
        state: ps::WAITING,
        prioritytime: now.saturating_sub(spec.priority * PRIORITY_STEP_NANOS),
        submissiontime: GoTime::from_unix_nanos(now),
        waitdeadline: processes::deadline_after(now, spec.maxwaittime),
        waitforparents: true,
        parents: vec![parent.processid.clone()],
        processgraphid: graphid.to_string(),
        spec,
        ..Process::default()
    };
    if let Some(member) = auth::executor_by_id(&ctx.tx, ctx.caller())? {
        child.initiatorname = member.executorname;
    }
    let mut new_parent = parent.clone();
    if insert {
        // Splice between the parent and all its children.
        for grandchild in &parent.children {
            let old = refuse_is_corruption(load(ctx, grandchild)?)?;
            let mut moved = old.clone();
            for p in moved.parents.iter_mut().filter(|p| **p == parent.processid) {
                *p = child.processid.clone();
            }
            processes::save(ctx, Some(&old), Some(&moved))?;
        }
        child.children = parent.children.clone();
        new_parent.children = vec![child.processid.clone()];
    } else {
        new_parent.children.push(child.processid.clone());
        if !childid.is_empty() {
            let old = refuse_unless!(load(ctx, childid)?);
            if old.processgraphid != graphid || old.state != ps::WAITING {
                return Ok(Err(ApiError::bad_request(format!(
                    "process {childid:?} is not a waiting process of workflow {graphid:?}"
                ))));
            }
            let mut later = old.clone();
            later.parents.push(child.processid.clone());
            later.waitforparents = true;
            processes::save(ctx, Some(&old), Some(&later))?;
            child.children = vec![childid.to_string()];
        }
    }
    if get_json::<Process, _>(&ctx.tx, Table::Processes, child.processid.as_bytes())?.is_some() {
        return Ok(Err(ApiError::conflict(
            "process id collision: request id reused",
        )));
    }
    let mut grown = record.clone();
    grown.graph.processids.push(child.processid.clone());
    save_graph(ctx, Some(&record.graph), Some(&grown))?;
    processes::save(ctx, Some(&parent), Some(&new_parent))?;
    processes::save(ctx, None, Some(&child))?;
    Ok(Ok(Reply::Process(Box::new(child))))
}
