//! Unit tests of `apply` over the in-memory store: no IO, no clock, no raft.

use super::tx::MemState;
use super::*;
use proto::command::{Command, Op, Reply};
use proto::executor::executor_state;
use proto::process::process_state as ps;
use proto::{ErrorCode, Executor, FunctionSpec, Process};

const SERVER: &str = "0000000000000000000000000000000000000000000000000000000000000001";
const OWNER: &str = "0000000000000000000000000000000000000000000000000000000000000002";
const EXEC_A: &str = "00000000000000000000000000000000000000000000000000000000000000aa";
const EXEC_B: &str = "00000000000000000000000000000000000000000000000000000000000000bb";
const STRANGER: &str = "00000000000000000000000000000000000000000000000000000000000000ff";
const SECOND: i64 = 1_000_000_000;

/// A state machine driven by explicit commands and a manual clock.
struct World {
    state: MemState,
    now: i64,
    next_request: u64,
    events: Vec<Event>,
}

impl World {
    /// - server owner SERVER, colony "dev" owned by OWNER
    /// - approved executors EXEC_A ("a", type "cli") and EXEC_B ("b", type "cli")
    fn new() -> World {
        let mut world = World {
            state: MemState::default(),
            now: 1_000 * SECOND,
            next_request: 0,
            events: vec![],
        };
        world.ok(
            "",
            Op::InitServer {
                server_id: SERVER.into(),
            },
        );
        world.ok(
            SERVER,
            Op::AddColony(proto::Colony {
                colonyid: OWNER.into(),
                name: "dev".into(),
            }),
        );
        for (id, name) in [(EXEC_A, "a"), (EXEC_B, "b")] {
            world.add_executor(id, name, "cli");
        }
        world.events.clear();
        world
    }

    fn add_executor(&mut self, id: &str, name: &str, executortype: &str) {
        let executor = Executor {
            executorid: id.into(),
            executorname: name.into(),
            executortype: executortype.into(),
            colonyname: "dev".into(),
            ..Executor::default()
        };
        self.ok(OWNER, Op::AddExecutor(Box::new(executor)));
        let approve = Op::SetExecutorApproval {
            colonyname: "dev".into(),
            executorname: name.into(),
            approved: true,
        };
        self.ok(OWNER, approve);
    }

    #[track_caller]
    fn run(&mut self, caller: &str, op: Op) -> Result<Reply, proto::ApiError> {
        self.next_request += 1;
        let command = Command {
            now_nanos: self.now,
            request_id: format!("{:032x}", self.next_request),
            caller_id: caller.into(),
            op,
        };
        let before = self.state.clone();
        let applied = apply(&self.state, &command).expect("mem store never fails");
        if applied.response.0.is_err() {
            assert!(
                applied.writes.is_empty(),
                "a refused command must write nothing"
            );
        }
        self.state.commit(applied.writes);
        if applied.response.0.is_err() {
            assert_eq!(before, self.state);
        }
        self.events.extend(applied.events);
        self.check_invariants();
        applied.response.0
    }

    #[track_caller]
    fn ok(&mut self, caller: &str, op: Op) -> Reply {
        self.run(caller, op).expect("command should succeed")
    }

    #[track_caller]
    fn refused(&mut self, caller: &str, op: Op) -> ErrorCode {
        self.run(caller, op)
            .expect_err("command should be refused")
            .code
    }

    fn submit(&mut self, spec: FunctionSpec) -> Process {
        match self.ok(EXEC_A, Op::Submit(Box::new(spec))) {
            Reply::Process(p) => *p,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    fn assign(&mut self, caller: &str) -> Option<Process> {
        let op = Op::Assign {
            colonyname: "dev".into(),
            cpu_millis: None,
            mem_mib: None,
        };
        match self.ok(caller, op) {
            Reply::Process(p) => Some(*p),
            Reply::NothingToAssign => None,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    fn process(&self, id: &str) -> Process {
        query::process(&self.state, id)
            .unwrap()
            .expect("process exists")
    }

    /// Every index entry agrees with the process records, and counters match.
    fn check_invariants(&self) {
        let mut counted = std::collections::BTreeMap::<(String, i32), i64>::new();
        for ((table, key), value) in &self.state.entries {
            match table {
                keys::Table::Processes => {
                    let p: Process = serde_json::from_slice(value).unwrap();
                    *counted
                        .entry((p.spec.conditions.colonyname.clone(), p.state))
                        .or_default() += 1;
                    let in_queue = self.state.entries.keys().any(|(t, k)| {
                        *t == keys::Table::Queue && keys::trailing_id(k) == p.processid
                    });
                    assert_eq!(
                        in_queue,
                        p.state == ps::WAITING && !p.waitforparents,
                        "{p:?}"
                    );
                    assert_eq!(
                        p.isassigned,
                        p.state == ps::RUNNING || (p.isassigned && ps::is_terminal(p.state))
                    );
                }
                keys::Table::Queue
                | keys::Table::Assigned
                | keys::Table::ByState
                | keys::Table::Deadlines => {
                    let id = keys::trailing_id(key);
                    let p = self.process(id);
                    if *table == keys::Table::Assigned
                        || key.first() == Some(&1) && *table == keys::Table::Deadlines
                    {
                        assert_eq!(p.state, ps::RUNNING);
                    }
                }
                _ => {}
            }
        }
        for ((colony, state), n) in counted {
            let stored = processes::read_count(&self.state, &keys::count(&colony, state)).unwrap();
            assert_eq!(stored, n, "counter {colony}/{state}");
        }
        self.check_workflow_invariants();
    }

    /// Every workflow's member counts, state and listing entry agree with its processes.
    fn check_workflow_invariants(&self) {
        let mut counted = std::collections::BTreeMap::<(String, i32), i64>::new();
        for ((table, _), value) in &self.state.entries {
            if *table != keys::Table::Graphs {
                continue;
            }
            let record: crate::state::workflows::GraphRecord =
                serde_json::from_slice(value).unwrap();
            let graph = &record.graph;
            let mut counts = [0i64; 5];
            for id in &graph.processids {
                let p = self.process(id);
                assert_eq!(p.processgraphid, graph.processgraphid);
                counts[p.state as usize] += 1;
                if p.state == ps::WAITING && !p.waitforparents {
                    for parent in &p.parents {
                        assert_eq!(self.process(parent).state, ps::SUCCESS, "{p:?}");
                    }
                }
            }
            assert_eq!(record.counts, counts, "member counts of {graph:?}");
            if counts[ps::FAILED as usize] > 0 {
                assert_eq!(
                    counts[ps::WAITING as usize],
                    0,
                    "a failed graph runs nothing"
                );
            }
            let submitted = graph.submissiontime.unix_nanos().unwrap_or(0);
            let key = keys::by_state(
                &graph.colonyname,
                graph.state,
                submitted,
                &graph.processgraphid,
            );
            assert!(self
                .state
                .get(keys::Table::GraphsByState, &key)
                .unwrap()
                .is_some());
            *counted
                .entry((graph.colonyname.clone(), graph.state))
                .or_default() += 1;
        }
        let listed = self
            .state
            .entries
            .keys()
            .filter(|(t, _)| *t == keys::Table::GraphsByState)
            .count() as i64;
        assert_eq!(
            listed,
            counted.values().sum::<i64>(),
            "one listing entry per workflow"
        );
        for ((colony, state), n) in counted {
            let key = keys::graph_count(&colony, state);
            assert_eq!(processes::read_count(&self.state, &key).unwrap(), n);
        }
    }
}

fn spec(funcname: &str) -> FunctionSpec {
    let mut spec = FunctionSpec {
        funcname: funcname.into(),
        maxexectime: -1,
        maxwaittime: -1,
        maxretries: -1,
        ..FunctionSpec::default()
    };
    spec.conditions.colonyname = "dev".into();
    spec.conditions.executortype = "cli".into();
    spec
}

#[test]
fn submit_assign_close_lifecycle() {
    let mut w = World::new();
    let p = w.submit(spec("echo"));
    assert_eq!(p.state, ps::WAITING);
    assert_eq!(p.initiatorname, "a");
    assert_eq!(
        w.events,
        vec![
            Event::ProcessChanged {
                processid: p.processid.clone(),
                colonyname: "dev".into(),
                executortype: "cli".into(),
                state: ps::WAITING,
            },
            Event::Enqueued {
                colonyname: "dev".into(),
                executortype: "cli".into()
            }
        ]
    );
    let assigned = w.assign(EXEC_B).expect("a process is waiting");
    assert_eq!(assigned.processid, p.processid);
    assert_eq!(assigned.state, ps::RUNNING);
    assert_eq!(assigned.assignedexecutorid, EXEC_B);
    assert!(
        w.assign(EXEC_A).is_none(),
        "one process is never assigned twice"
    );
    let close = Op::CloseSuccessful {
        processid: p.processid.clone(),
        out: vec!["ok".into()],
    };
    assert_eq!(w.refused(EXEC_A, close.clone()), ErrorCode::Forbidden);
    w.ok(EXEC_B, close);
    let done = w.process(&p.processid);
    assert_eq!(done.state, ps::SUCCESS);
    assert_eq!(done.output, vec![serde_json::Value::from("ok")]);
    let fail = Op::CloseFailed {
        processid: p.processid.clone(),
        errors: vec!["late".into()],
    };
    assert_eq!(
        w.refused(EXEC_B, fail),
        ErrorCode::BadRequest,
        "terminal states never change"
    );
}

#[test]
fn priority_then_fifo_order() {
    let mut w = World::new();
    let first = w.submit(spec("first"));
    w.now += SECOND;
    let second = w.submit(spec("second"));
    w.now += SECOND;
    let urgent = w.submit(FunctionSpec {
        priority: 1,
        ..spec("urgent")
    });
    let order: Vec<String> = (0..3)
        .map(|_| w.assign(EXEC_A).unwrap().processid)
        .collect();
    assert_eq!(
        order,
        vec![urgent.processid, first.processid, second.processid]
    );
}

#[test]
fn executor_names_location_and_resources_are_matched() {
    let mut w = World::new();
    let mut targeted = spec("only-b");
    targeted.conditions.executornames = vec!["b".into()];
    let p = w.submit(targeted);
    assert!(w.assign(EXEC_A).is_none());
    assert_eq!(w.assign(EXEC_B).unwrap().processid, p.processid);

    let mut heavy = spec("heavy");
    heavy.conditions.cpu = "4000m".into();
    heavy.conditions.mem = "8Gi".into();
    let p = w.submit(heavy);
    assert_eq!(p.spec.conditions.mem, "8192Mi", "memory is normalized");
    let small = Op::Assign {
        colonyname: "dev".into(),
        cpu_millis: Some(1000),
        mem_mib: None,
    };
    assert_eq!(w.ok(EXEC_A, small), Reply::NothingToAssign);
    let big = Op::Assign {
        colonyname: "dev".into(),
        cpu_millis: Some(8000),
        mem_mib: Some(16384),
    };
    assert!(matches!(w.ok(EXEC_A, big), Reply::Process(_)));

    let mut located = spec("located");
    located.conditions.locationname = "Lab".into();
    w.submit(located);
    assert!(
        w.assign(EXEC_A).is_none(),
        "executor without location cannot take it"
    );
}

#[test]
fn maxexectime_requeues_then_fails_at_maxretries() {
    let mut w = World::new();
    let p = w.submit(FunctionSpec {
        maxexectime: 10,
        maxretries: 1,
        ..spec("slow")
    });
    w.assign(EXEC_A).unwrap();
    w.now += 5 * SECOND;
    assert_eq!(w.ok("", Op::Tick), Reply::Expired(0));
    w.now += 6 * SECOND;
    w.events.clear();
    assert_eq!(w.ok("", Op::Tick), Reply::Expired(1));
    let requeued = w.process(&p.processid);
    assert_eq!((requeued.state, requeued.retries), (ps::WAITING, 1));
    assert_eq!(requeued.prioritytime, p.prioritytime, "queue position kept");
    let wakes = w
        .events
        .iter()
        .filter(|e| matches!(e, Event::Enqueued { .. }));
    assert_eq!(wakes.count(), 1, "re-queue wakes a waiter");
    assert!(w.events.contains(&Event::ProcessChanged {
        processid: p.processid.clone(),
        colonyname: "dev".into(),
        executortype: "cli".into(),
        state: ps::WAITING,
    }));
    let late = Op::CloseSuccessful {
        processid: p.processid.clone(),
        out: vec![],
    };
    assert_eq!(
        w.refused(EXEC_A, late),
        ErrorCode::Forbidden,
        "late executor cannot close"
    );
    w.assign(EXEC_B).unwrap();
    w.now += 11 * SECOND;
    w.ok("", Op::Tick);
    let failed = w.process(&p.processid);
    assert_eq!(failed.state, ps::FAILED);
    assert_eq!(
        failed.errors,
        vec!["Maximum execution time limit exceeded".to_string()]
    );
}

#[test]
fn maxwaittime_fails_waiting_process() {
    let mut w = World::new();
    let p = w.submit(FunctionSpec {
        maxwaittime: 3,
        ..spec("impatient")
    });
    w.now += 4 * SECOND;
    w.ok("", Op::Tick);
    let failed = w.process(&p.processid);
    assert_eq!(failed.state, ps::FAILED);
    assert!(w.assign(EXEC_A).is_none());
}

#[test]
fn roles_are_enforced() {
    let mut w = World::new();
    let colony = proto::Colony {
        colonyid: OWNER.into(),
        name: "other".into(),
    };
    assert_eq!(
        w.refused(OWNER, Op::AddColony(colony.clone())),
        ErrorCode::Forbidden
    );
    assert_eq!(
        w.refused(
            SERVER,
            Op::AddColony(proto::Colony {
                name: "dev".into(),
                ..colony
            })
        ),
        ErrorCode::Conflict
    );
    assert_eq!(
        w.refused(STRANGER, Op::Submit(Box::new(spec("x")))),
        ErrorCode::Forbidden
    );
    let executor = Executor {
        executorid: STRANGER.into(),
        executorname: "c".into(),
        executortype: "cli".into(),
        colonyname: "dev".into(),
        ..Executor::default()
    };
    assert_eq!(
        w.refused(EXEC_A, Op::AddExecutor(Box::new(executor.clone()))),
        ErrorCode::Forbidden
    );
    let Reply::Executor(added) = w.ok(OWNER, Op::AddExecutor(Box::new(executor))) else {
        panic!()
    };
    assert_eq!(added.state, executor_state::PENDING);
    assert_eq!(
        w.refused(STRANGER, Op::Submit(Box::new(spec("x")))),
        ErrorCode::Forbidden,
        "pending executor is no member"
    );
    let assign = Op::Assign {
        colonyname: "dev".into(),
        cpu_millis: None,
        mem_mib: None,
    };
    assert_eq!(
        w.refused(OWNER, assign),
        ErrorCode::Forbidden,
        "the owner is not an executor"
    );
}

#[test]
fn removing_an_executor_requeues_its_processes() {
    let mut w = World::new();
    let p = w.submit(spec("x"));
    w.assign(EXEC_A).unwrap();
    w.ok(
        OWNER,
        Op::RemoveExecutor {
            colonyname: "dev".into(),
            executorname: "a".into(),
        },
    );
    let back = w.process(&p.processid);
    assert_eq!(
        (back.state, back.retries, back.isassigned),
        (ps::WAITING, 0, false)
    );
    assert_eq!(w.assign(EXEC_B).unwrap().processid, p.processid);
}

#[test]
fn cancel_remove_and_remove_all() {
    let mut w = World::new();
    let a = w.submit(spec("a"));
    let b = w.submit(spec("b"));
    w.ok(
        EXEC_A,
        Op::CancelProcess {
            processid: a.processid.clone(),
        },
    );
    assert_eq!(w.process(&a.processid).state, ps::CANCELLED);
    assert_eq!(
        w.refused(
            EXEC_A,
            Op::CancelProcess {
                processid: a.processid.clone()
            }
        ),
        ErrorCode::BadRequest
    );
    w.ok(
        EXEC_A,
        Op::RemoveProcess {
            processid: a.processid.clone(),
        },
    );
    assert!(query::process(&w.state, &a.processid).unwrap().is_none());
    let all = Op::RemoveAllProcesses {
        colonyname: "dev".into(),
        state: ps::NOTSET,
    };
    assert_eq!(w.refused(EXEC_A, all.clone()), ErrorCode::Forbidden);
    w.ok(OWNER, all);
    assert!(query::process(&w.state, &b.processid).unwrap().is_none());
    let stats = query::colony_statistics(&w.state, "dev").unwrap();
    assert_eq!(stats.waitingprocesses, 0);
}

#[test]
fn attributes_belong_to_running_processes() {
    let mut w = World::new();
    let p = w.submit(spec("x"));
    let attribute = proto::Attribute {
        targetid: p.processid.clone(),
        key: "k".into(),
        value: "v".into(),
        attributetype: 1,
        ..Default::default()
    };
    assert_eq!(
        w.refused(EXEC_A, Op::AddAttribute(attribute.clone())),
        ErrorCode::Forbidden
    );
    w.assign(EXEC_A).unwrap();
    let Reply::Attribute(added) = w.ok(EXEC_A, Op::AddAttribute(attribute)) else {
        panic!()
    };
    assert_eq!(
        added.attributeid,
        proto::Attribute::derive_id(&p.processid, "k", 1)
    );
    let (owner, found) = query::attribute(&w.state, &added.attributeid)
        .unwrap()
        .unwrap();
    assert_eq!(
        (owner.processid, found.value),
        (p.processid, "v".to_string())
    );
}

#[test]
fn listing_and_statistics() {
    let mut w = World::new();
    for i in 0..5 {
        w.now += SECOND;
        w.submit(FunctionSpec {
            label: format!("l{}", i % 2),
            ..spec("x")
        });
    }
    w.assign(EXEC_A).unwrap();
    let filter = query::ProcessFilter::default();
    let waiting = query::processes(&w.state, "dev", ps::WAITING, 10, &filter).unwrap();
    assert_eq!(waiting.len(), 4);
    assert!(
        waiting
            .windows(2)
            .all(|p| p[0].submissiontime >= p[1].submissiontime),
        "newest first"
    );
    let labelled = query::ProcessFilter {
        label: "l1".into(),
        ..Default::default()
    };
    assert_eq!(
        query::processes(&w.state, "dev", ps::WAITING, 10, &labelled)
            .unwrap()
            .len(),
        2
    );
    let stats = query::statistics(&w.state).unwrap();
    assert_eq!(
        (
            stats.colonies,
            stats.executors,
            stats.waitingprocesses,
            stats.runningprocesses
        ),
        (1, 2, 4, 1)
    );
}

#[test]
fn apply_is_deterministic() {
    let build = || {
        let mut w = World::new();
        let p = w.submit(spec("x"));
        w.assign(EXEC_A);
        w.ok(
            EXEC_A,
            Op::CloseSuccessful {
                processid: p.processid,
                out: vec![],
            },
        );
        w.state
    };
    assert_eq!(build(), build());
}

#[test]
fn invalid_specs_are_refused_with_reasons() {
    let mut w = World::new();
    let err = w
        .run(
            EXEC_A,
            Op::Submit(Box::new(FunctionSpec {
                priority: 60_000,
                ..spec("x")
            })),
        )
        .unwrap_err();
    assert!(err.message.contains("priority 60000"), "{}", err.message);
    let mut bad_mem = spec("x");
    bad_mem.conditions.mem = "12Qi".into();
    let err = w.run(EXEC_A, Op::Submit(Box::new(bad_mem))).unwrap_err();
    assert!(err.message.contains("memory unit"), "{}", err.message);
    let mut no_colony = spec("x");
    no_colony.conditions.colonyname = "nope".into();
    let err = w.run(EXEC_A, Op::Submit(Box::new(no_colony))).unwrap_err();
    // ColonyOS's role check: 403, naming the colony.
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert_eq!(err.message, "Colony with name <nope> does not exists");
}

#[test]
fn a_retried_command_is_not_applied_twice() {
    let mut w = World::new();
    let command = Command {
        now_nanos: w.now,
        request_id: "retry-1".into(),
        caller_id: EXEC_A.into(),
        op: Op::Submit(Box::new(spec("once"))),
    };
    let first = apply(&w.state, &command).unwrap();
    w.state.commit(first.writes);
    let again = apply(&w.state, &command).unwrap();
    assert_eq!(
        again.response, first.response,
        "the recorded response is returned"
    );
    assert!(
        again.writes.is_empty(),
        "nothing is written the second time"
    );
    let stats = query::colony_statistics(&w.state, "dev").unwrap();
    assert_eq!(stats.waitingprocesses, 1);
    tracing::info!("--- after the window the record is forgotten");
    w.now += DEDUP_WINDOW_NANOS + SECOND;
    w.ok("", Op::Tick);
    let key = command.request_id.as_bytes();
    assert_eq!(w.state.get(keys::Table::Requests, key).unwrap(), None);
}

/// - an `AssignFor` that finds nothing records nothing under its key: a later one assigns
/// - once one assigned a process, every later `AssignFor` with that key answers the same
///   process, assigns no other even with work waiting (a long-poll gets at most one), and
///   writes nothing
/// - another key is another long-poll
#[test]
fn assign_for_a_key_assigns_at_most_one_process_and_repeats_it() {
    let mut w = World::new();
    let assign_for = |key: &str| Op::AssignFor {
        key: key.into(),
        colonyname: "dev".into(),
        cpu_millis: None,
        mem_mib: None,
    };
    let key = "k".repeat(32);
    assert_eq!(w.ok(EXEC_A, assign_for(&key)), Reply::NothingToAssign);
    let first = w.submit(spec("echo"));
    let second = w.submit(spec("echo"));
    let Reply::Process(assigned) = w.ok(EXEC_A, assign_for(&key)) else {
        panic!("the first waiting process is assigned");
    };
    assert_eq!(assigned.processid, first.processid);
    let before = w.state.clone();
    let Reply::Process(again) = w.ok(EXEC_A, assign_for(&key)) else {
        panic!("the same key answers its process again");
    };
    assert_eq!(again.processid, first.processid);
    assert_eq!(w.process(&second.processid).state, ps::WAITING);
    assert_eq!(w.state, before, "the repeat writes nothing");
    let Reply::Process(other) = w.ok(EXEC_A, assign_for(&"j".repeat(32))) else {
        panic!("another key is another long-poll");
    };
    assert_eq!(other.processid, second.processid);
}

mod prop;
mod registry;
mod schedules;
mod workflows;
