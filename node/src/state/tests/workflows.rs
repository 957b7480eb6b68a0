//! Workflow tests: children wait for their parents and receive their output, a failed member
//! fails the graph, cancel and remove act on whole graphs, children added at run time.
//! `World::run` checks the workflow invariants after every command.

use super::*;
use proto::{ProcessGraph, WorkflowSpec};
use serde_json::{json, Value};

fn node(name: &str, dependencies: &[&str]) -> FunctionSpec {
    let mut spec = spec(&format!("fn-{name}"));
    spec.nodename = name.into();
    spec.conditions.colonyname = String::new(); // a workflow puts its specs in its colony
    spec.conditions.dependencies = dependencies.iter().map(|d| d.to_string()).collect();
    spec
}

fn workflow(specs: Vec<FunctionSpec>) -> Op {
    Op::SubmitWorkflow(Box::new(WorkflowSpec {
        colonyname: "dev".into(),
        functionspecs: specs,
    }))
}

impl World {
    fn submit_workflow(&mut self, specs: Vec<FunctionSpec>) -> ProcessGraph {
        match self.ok(EXEC_A, workflow(specs)) {
            Reply::ProcessGraph(graph) => *graph,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    fn graph(&self, id: &str) -> ProcessGraph {
        query::process_graph(&self.state, id)
            .unwrap()
            .expect("graph exists")
    }

    fn close(&mut self, caller: &str, p: &Process, out: Vec<Value>) {
        let op = Op::CloseSuccessful {
            processid: p.processid.clone(),
            out,
        };
        self.ok(caller, op);
    }

    /// Assigns to `caller`, expecting a process of node `name`.
    #[track_caller]
    fn assign_node(&mut self, caller: &str, name: &str) -> Process {
        let p = self.assign(caller).expect("a process is ready");
        assert_eq!(p.spec.nodename, name);
        p
    }
}

#[test]
fn three_levels_run_in_order_with_parent_output_as_input() {
    let mut w = World::new();
    // a -> (b, c) -> d
    let graph = w.submit_workflow(vec![
        node("d", &["b", "c"]),
        node("a", &[]),
        node("b", &["a"]),
        node("c", &["a"]),
    ]);
    assert_eq!(graph.state, ps::WAITING);
    assert_eq!(graph.processids.len(), 4);
    assert_eq!(graph.rootprocessids, vec![graph.processids[1].clone()]);
    assert_eq!(graph.nodes.len(), 4);
    assert_eq!(graph.edges.len(), 4);
    let a = w.assign_node(EXEC_A, "a");
    assert_eq!(a.spec.conditions.colonyname, "dev");
    assert!(w.assign(EXEC_B).is_none(), "children wait for their parent");
    assert_eq!(w.graph(&graph.processgraphid).state, ps::RUNNING);
    w.close(EXEC_A, &a, vec![json!("x")]);
    let first = w.assign(EXEC_A).expect("b or c is released");
    let second = w.assign(EXEC_B).expect("b and c are both released");
    assert_eq!(first.input, vec![json!("x")]);
    assert_eq!(second.input, vec![json!("x")]);
    assert!(w.assign(EXEC_A).is_none(), "d waits for both b and c");
    let (b, c) = match first.spec.nodename.as_str() {
        "b" => (first, second),
        _ => (second, first),
    };
    let c_runner = c.assignedexecutorid.clone();
    w.close(&c_runner, &c, vec![json!("from-c")]);
    assert!(w.assign(EXEC_A).is_none(), "d still waits for b");
    let b_runner = b.assignedexecutorid.clone();
    w.close(&b_runner, &b, vec![json!("from-b"), json!(2)]);
    let d = w.assign_node(EXEC_A, "d");
    assert_eq!(
        d.input,
        vec![json!("from-b"), json!(2), json!("from-c")],
        "parents' outputs in dependency order"
    );
    w.close(EXEC_A, &d, vec![]);
    let done = w.graph(&graph.processgraphid);
    assert_eq!(done.state, ps::SUCCESS);
    assert!(!done.endtime.is_zero());
    let stats = query::colony_statistics(&w.state, "dev").unwrap();
    assert_eq!(stats.successfulworkflows, 1);
    assert_eq!(stats.runningworkflows, 0);
    let listed = query::process_graphs(&w.state, "dev", ps::SUCCESS, 10).unwrap();
    assert_eq!(listed.len(), 1);
}

#[test]
fn a_failed_member_fails_the_graph_and_its_waiting_processes() {
    let mut w = World::new();
    let graph = w.submit_workflow(vec![node("a", &[]), node("b", &["a"]), node("c", &[])]);
    let first = w.assign(EXEC_A).expect("a root");
    let second = w.assign(EXEC_B).expect("the other root");
    let (a, c) = match first.spec.nodename.as_str() {
        "a" => (first, second),
        _ => (second, first),
    };
    let fail = Op::CloseFailed {
        processid: a.processid.clone(),
        errors: vec!["boom".into()],
    };
    let a_runner = a.assignedexecutorid.clone();
    w.ok(&a_runner, fail);
    let failed = w.graph(&graph.processgraphid);
    assert_eq!(failed.state, ps::FAILED);
    let b = w.process(&graph.processids[1]);
    assert_eq!(b.state, ps::FAILED);
    assert!(w.assign(EXEC_A).is_none(), "nothing of a failed graph runs");
    // A member that was already running may still finish; the graph stays failed.
    let c_runner = c.assignedexecutorid.clone();
    w.close(&c_runner, &c, vec![]);
    assert_eq!(w.graph(&graph.processgraphid).state, ps::FAILED);
    let stats = query::colony_statistics(&w.state, "dev").unwrap();
    assert_eq!((stats.failedworkflows, stats.failedprocesses), (1, 2));
}

#[test]
fn an_expired_member_fails_the_graph_through_the_tick() {
    let mut w = World::new();
    let mut a = node("a", &[]);
    a.maxexectime = 5;
    a.maxretries = 0;
    let graph = w.submit_workflow(vec![a, node("b", &["a"])]);
    w.assign_node(EXEC_A, "a");
    w.now += 10 * SECOND;
    w.ok("", Op::Tick);
    assert_eq!(w.graph(&graph.processgraphid).state, ps::FAILED);
    assert_eq!(w.process(&graph.processids[1]).state, ps::FAILED);
}

#[test]
fn graphs_are_cancelled_and_removed_whole() {
    let mut w = World::new();
    let graph = w.submit_workflow(vec![node("a", &[]), node("b", &["a"])]);
    let id = graph.processgraphid.clone();
    let a = w.assign_node(EXEC_A, "a");
    for op in [
        Op::CancelProcess {
            processid: a.processid.clone(),
        },
        Op::RemoveProcess {
            processid: graph.processids[1].clone(),
        },
    ] {
        assert_eq!(
            w.refused(EXEC_A, op),
            ErrorCode::BadRequest,
            "members one by one"
        );
    }
    let remove = Op::RemoveProcessGraph {
        processgraphid: id.clone(),
    };
    assert_eq!(
        w.refused(EXEC_A, remove.clone()),
        ErrorCode::BadRequest,
        "running"
    );
    let cancel = Op::CancelProcessGraph {
        processgraphid: id.clone(),
    };
    assert_eq!(w.refused(STRANGER, cancel.clone()), ErrorCode::Forbidden);
    w.ok(EXEC_B, cancel.clone());
    assert_eq!(w.graph(&id).state, ps::CANCELLED);
    assert_eq!(w.process(&a.processid).state, ps::CANCELLED);
    assert_eq!(
        w.refused(EXEC_B, cancel),
        ErrorCode::BadRequest,
        "already ended"
    );
    let late = Op::CloseSuccessful {
        processid: a.processid.clone(),
        out: vec![],
    };
    assert_eq!(w.refused(EXEC_A, late), ErrorCode::BadRequest);
    w.ok(EXEC_A, remove);
    assert!(query::process_graph(&w.state, &id).unwrap().is_none());
    assert!(query::process(&w.state, &a.processid).unwrap().is_none());
    // Remove-all by state, and the colony owner only.
    let waiting = w.submit_workflow(vec![node("x", &[])]);
    let all = |state| Op::RemoveAllProcessGraphs {
        colonyname: "dev".into(),
        state,
    };
    assert_eq!(w.refused(EXEC_A, all(ps::NOTSET)), ErrorCode::Forbidden);
    w.ok(OWNER, all(ps::SUCCESS));
    assert!(query::process_graph(&w.state, &waiting.processgraphid)
        .unwrap()
        .is_some());
    // Remove-all of processes leaves workflow members to their workflow.
    let processes = Op::RemoveAllProcesses {
        colonyname: "dev".into(),
        state: ps::NOTSET,
    };
    w.ok(OWNER, processes);
    assert_eq!(w.process(&waiting.processids[0]).state, ps::WAITING);
    w.ok(OWNER, all(ps::NOTSET));
    assert!(query::process_graph(&w.state, &waiting.processgraphid)
        .unwrap()
        .is_none());
    let stats = query::colony_statistics(&w.state, "dev").unwrap();
    assert_eq!((stats.waitingprocesses, stats.waitingworkflows), (0, 0));
}

#[test]
fn invalid_workflows_are_refused_with_reasons() {
    let mut w = World::new();
    let cases = [
        (vec![], "no function specs"),
        (vec![node("a", &[]), node("a", &[])], "duplicate nodename"),
        (vec![node("a", &["zz"])], "not a node of the workflow"),
        (vec![node("a", &["b"]), node("b", &["a"])], "cycle"),
        (vec![node("", &[])], "nodename must not be empty"),
    ];
    for (specs, reason) in cases {
        let error = w.run(EXEC_A, workflow(specs)).unwrap_err();
        assert_eq!(error.code, ErrorCode::BadRequest);
        assert!(
            error.message.contains(reason),
            "{} vs {reason}",
            error.message
        );
    }
    assert_eq!(
        w.refused(STRANGER, workflow(vec![node("a", &[])])),
        ErrorCode::Forbidden
    );
}

#[test]
fn children_are_added_under_a_running_parent() {
    let mut w = World::new();
    let graph = w.submit_workflow(vec![node("a", &[]), node("z", &["a"])]);
    let id = graph.processgraphid.clone();
    let z = graph.processids[1].clone();
    let a = w.assign_node(EXEC_A, "a");
    let add = |parent: &str, child: &str, insert: bool| Op::AddChild {
        processgraphid: id.clone(),
        parentprocessid: parent.into(),
        childprocessid: child.into(),
        spec: Box::new(node(if insert { "inserted" } else { "appended" }, &[])),
        insert,
    };
    assert_eq!(
        w.refused(EXEC_B, add(&a.processid, "", true)),
        ErrorCode::Forbidden,
        "only the executor running the parent"
    );
    // Insert: a -> inserted -> z.
    let Reply::Process(inserted) = w.ok(EXEC_A, add(&a.processid, "", true)) else {
        panic!("a process")
    };
    assert_eq!(inserted.parents, vec![a.processid.clone()]);
    assert_eq!(inserted.children, vec![z.clone()]);
    assert_eq!(w.process(&z).parents, vec![inserted.processid.clone()]);
    // Append before z: a -> appended -> z.
    let Reply::Process(appended) = w.ok(EXEC_A, add(&a.processid, &z, false)) else {
        panic!("a process")
    };
    assert_eq!(w.graph(&id).processids.len(), 4);
    w.close(EXEC_A, &a, vec![json!(1)]);
    let first = w.assign(EXEC_A).expect("inserted or appended");
    let second = w.assign(EXEC_B).expect("both are released by a");
    assert!(w.assign(EXEC_A).is_none(), "z waits for both new parents");
    w.close(EXEC_A, &first, vec![]);
    w.close(EXEC_B, &second, vec![]);
    let last = w.assign(EXEC_A).expect("z is released");
    assert_eq!(last.processid, z);
    let mut parents = last.parents.clone();
    parents.sort();
    let mut expected = vec![inserted.processid.clone(), appended.processid.clone()];
    expected.sort();
    assert_eq!(parents, expected);
    w.close(EXEC_A, &last, vec![]);
    assert_eq!(w.graph(&id).state, ps::SUCCESS);
}
