//! Property tests: random command sequences applied to the state machine, with single
//! processes and diamond workflows. `World::run` checks the index, counter and workflow
//! invariants after every command; these tests add what a sequence must preserve: terminal
//! states never change, statistics match the processes, no process is both waiting and
//! assigned, and a refused command changes nothing.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const CALLERS: [&str; 4] = [EXEC_A, EXEC_B, OWNER, STRANGER];

/// One random step. `pick` chooses among the processes submitted so far.
#[derive(Clone, Debug)]
enum Step {
    Submit {
        other_type: bool,
        priority: i64,
        maxexectime: i64,
        maxwaittime: i64,
        maxretries: i64,
    },
    Assign {
        caller: usize,
    },
    CloseOk {
        caller: usize,
        pick: usize,
    },
    CloseFailed {
        caller: usize,
        pick: usize,
    },
    SetOutput {
        caller: usize,
        pick: usize,
    },
    Cancel {
        caller: usize,
        pick: usize,
    },
    Remove {
        caller: usize,
        pick: usize,
    },
    RemoveAll {
        state: i32,
    },
    /// Time passes by this many seconds, then the leader ticks.
    Tick {
        seconds: i64,
    },
    /// A diamond workflow `a -> (b, c) -> d` whose processes may expire (`maxexectime`).
    SubmitWorkflow {
        maxexectime: i64,
        maxretries: i64,
    },
    CancelWorkflow {
        caller: usize,
        pick: usize,
    },
    RemoveWorkflow {
        caller: usize,
        pick: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let caller = 0..CALLERS.len();
    let pick = any::<usize>();
    let limit = prop_oneof![Just(-1i64), 1i64..5];
    let pair = (caller.clone(), pick);
    prop_oneof![
        4 => (any::<bool>(), -2i64..3, limit.clone(), limit, -1i64..3).prop_map(
            |(other_type, priority, maxexectime, maxwaittime, maxretries)| Step::Submit {
                other_type,
                priority,
                maxexectime,
                maxwaittime,
                maxretries,
            }
        ),
        4 => caller.prop_map(|caller| Step::Assign { caller }),
        3 => pair.clone().prop_map(|(caller, pick)| Step::CloseOk { caller, pick }),
        1 => pair.clone().prop_map(|(caller, pick)| Step::CloseFailed { caller, pick }),
        1 => pair.clone().prop_map(|(caller, pick)| Step::SetOutput { caller, pick }),
        1 => pair.clone().prop_map(|(caller, pick)| Step::Cancel { caller, pick }),
        1 => pair.prop_map(|(caller, pick)| Step::Remove { caller, pick }),
        1 => (-1i32..5).prop_map(|state| Step::RemoveAll { state }),
        2 => (0i64..4).prop_map(|seconds| Step::Tick { seconds }),
        2 => (prop_oneof![Just(-1i64), 1i64..5], -1i64..2).prop_map(
            |(maxexectime, maxretries)| Step::SubmitWorkflow { maxexectime, maxretries }
        ),
        1 => (0..CALLERS.len(), any::<usize>())
            .prop_map(|(caller, pick)| Step::CancelWorkflow { caller, pick }),
        1 => (0..CALLERS.len(), any::<usize>())
            .prop_map(|(caller, pick)| Step::RemoveWorkflow { caller, pick }),
    ]
}

impl World {
    /// Applies `step`; a refusal is a valid outcome (World::run checks it wrote nothing).
    fn apply_step(&mut self, step: &Step, ids: &mut Vec<String>, graphs: &mut Vec<String>) {
        let id = |pick: usize| match ids.len() {
            0 => "0".repeat(64),
            n => ids[pick % n].clone(),
        };
        let graph = |pick: usize| match graphs.len() {
            0 => "0".repeat(64),
            n => graphs[pick % n].clone(),
        };
        let (caller, op) = match step.clone() {
            Step::Submit {
                other_type,
                priority,
                maxexectime,
                maxwaittime,
                maxretries,
            } => {
                let mut spec = spec("prop");
                if other_type {
                    spec.conditions.executortype = "gpu".into();
                }
                spec.priority = priority;
                spec.maxexectime = maxexectime;
                spec.maxwaittime = maxwaittime;
                spec.maxretries = maxretries;
                (EXEC_A, Op::Submit(Box::new(spec)))
            }
            Step::Assign { caller } => {
                let op = Op::Assign {
                    colonyname: "dev".into(),
                    cpu_millis: None,
                    mem_mib: None,
                };
                (CALLERS[caller], op)
            }
            Step::CloseOk { caller, pick } => {
                let out = vec![CALLERS[caller].into()];
                (
                    CALLERS[caller],
                    Op::CloseSuccessful {
                        processid: id(pick),
                        out,
                    },
                )
            }
            Step::CloseFailed { caller, pick } => {
                let errors = vec!["failed".into()];
                (
                    CALLERS[caller],
                    Op::CloseFailed {
                        processid: id(pick),
                        errors,
                    },
                )
            }
            Step::SetOutput { caller, pick } => {
                let out = vec!["partial".into()];
                (
                    CALLERS[caller],
                    Op::SetOutput {
                        processid: id(pick),
                        out,
                    },
                )
            }
            Step::Cancel { caller, pick } => (
                CALLERS[caller],
                Op::CancelProcess {
                    processid: id(pick),
                },
            ),
            Step::Remove { caller, pick } => (
                CALLERS[caller],
                Op::RemoveProcess {
                    processid: id(pick),
                },
            ),
            Step::RemoveAll { state } => {
                let op = Op::RemoveAllProcesses {
                    colonyname: "dev".into(),
                    state,
                };
                (OWNER, op)
            }
            Step::Tick { seconds } => {
                self.now += seconds * SECOND;
                ("", Op::Tick)
            }
            Step::SubmitWorkflow {
                maxexectime,
                maxretries,
            } => {
                let node = |name: &str, parents: &[&str]| {
                    let mut spec = spec(name);
                    spec.nodename = name.into();
                    spec.maxexectime = maxexectime;
                    spec.maxretries = maxretries;
                    spec.conditions.dependencies = parents.iter().map(|p| p.to_string()).collect();
                    spec
                };
                let workflow = proto::WorkflowSpec {
                    colonyname: "dev".into(),
                    functionspecs: vec![
                        node("a", &[]),
                        node("b", &["a"]),
                        node("c", &["a"]),
                        node("d", &["b", "c"]),
                    ],
                };
                (EXEC_B, Op::SubmitWorkflow(Box::new(workflow)))
            }
            Step::CancelWorkflow { caller, pick } => (
                CALLERS[caller],
                Op::CancelProcessGraph {
                    processgraphid: graph(pick),
                },
            ),
            Step::RemoveWorkflow { caller, pick } => (
                CALLERS[caller],
                Op::RemoveProcessGraph {
                    processgraphid: graph(pick),
                },
            ),
        };
        match self.run(caller, op) {
            Ok(Reply::Process(process)) if matches!(step, Step::Submit { .. }) => {
                ids.push(process.processid.clone());
            }
            Ok(Reply::ProcessGraph(submitted)) => {
                ids.extend(submitted.processids.iter().cloned());
                graphs.push(submitted.processgraphid.clone());
            }
            _ => {}
        }
    }

    /// Every stored process, by id.
    fn processes(&self) -> BTreeMap<String, Process> {
        self.state
            .entries
            .iter()
            .filter(|((table, _), _)| *table == keys::Table::Processes)
            .map(|(_, value)| {
                let p: Process = serde_json::from_slice(value).unwrap();
                (p.processid.clone(), p)
            })
            .collect()
    }
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(), 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_the_invariants(steps in steps()) {
        let mut world = World::new();
        let mut ids = Vec::new();
        let mut graphs = Vec::new();
        let mut terminal: BTreeMap<String, Process> = BTreeMap::new();
        for step in &steps {
            world.apply_step(step, &mut ids, &mut graphs);
            let processes = world.processes();
            for (id, before) in &terminal {
                if let Some(now) = processes.get(id) {
                    prop_assert_eq!(
                        (now.state, &now.output, &now.assignedexecutorid),
                        (before.state, &before.output, &before.assignedexecutorid),
                        "terminal process {} changed after {:?}", id, step
                    );
                }
            }
            for (id, p) in &processes {
                if ps::is_terminal(p.state) {
                    terminal.entry(id.clone()).or_insert_with(|| p.clone());
                }
                let waiting = p.state == ps::WAITING;
                prop_assert!(!(waiting && p.isassigned), "{} waiting and assigned", id);
                if p.state == ps::RUNNING {
                    prop_assert!(
                        [EXEC_A, EXEC_B].contains(&p.assignedexecutorid.as_str()),
                        "{} runs on {:?}, not an approved executor", id, p.assignedexecutorid
                    );
                }
            }
            let stats = query::colony_statistics(&world.state, "dev").unwrap();
            let count = |state: i32| processes.values().filter(|p| p.state == state).count() as i64;
            prop_assert_eq!(stats.waitingprocesses, count(ps::WAITING));
            prop_assert_eq!(stats.runningprocesses, count(ps::RUNNING));
            prop_assert_eq!(stats.successfulprocesses, count(ps::SUCCESS));
            prop_assert_eq!(stats.failedprocesses, count(ps::FAILED));
        }
    }
}
