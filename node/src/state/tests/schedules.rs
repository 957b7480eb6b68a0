//! Crons and generators: workflows started by the tick on schedule (once per period, however
//! often the tick runs), skipped while a previous run is waited for, fed by the previous
//! leaves; and by packed arguments.

use super::*;
use proto::{Cron, Generator, ProcessGraph};
use serde_json::json;

fn workflow_text(nodes: &[(&str, &[&str])]) -> String {
    let specs: Vec<serde_json::Value> = nodes
        .iter()
        .map(|(name, deps)| {
            json!({
                "nodename": name,
                "funcname": name,
                "maxexectime": -1,
                "maxwaittime": -1,
                "maxretries": -1,
                "conditions": {"executortype": "cli", "dependencies": deps},
            })
        })
        .collect();
    json!({"colonyname": "dev", "functionspecs": specs}).to_string()
}

fn cron(expression: &str, interval: i64, wait: bool) -> Cron {
    Cron {
        colonyname: "dev".into(),
        name: "nightly".into(),
        cronexpression: expression.into(),
        interval,
        waitforprevprocessgraph: wait,
        workflowspec: workflow_text(&[("first", &[]), ("last", &["first"])]),
        ..Cron::default()
    }
}

impl World {
    fn add_cron(&mut self, cron: Cron) -> Cron {
        match self.ok(EXEC_A, Op::AddCron(Box::new(cron))) {
            Reply::Cron(cron) => *cron,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    fn graphs(&self) -> Vec<ProcessGraph> {
        let mut all = Vec::new();
        for state in [
            ps::WAITING,
            ps::RUNNING,
            ps::SUCCESS,
            ps::FAILED,
            ps::CANCELLED,
        ] {
            all.extend(query::process_graphs(&self.state, "dev", state, 100).unwrap());
        }
        all
    }

    fn cron(&self, id: &str) -> Cron {
        let found = crate::state::crons::member_cron(&self.state, id, EXEC_A).unwrap();
        found.expect("cron exists")
    }

    /// Runs the workflow's two processes to success, each outputting its node name.
    fn finish_two_step_workflow(&mut self) {
        for _ in 0..2 {
            let p = self.assign(EXEC_A).expect("a ready process");
            let close = Op::CloseSuccessful {
                processid: p.processid.clone(),
                out: vec![json!(p.spec.nodename)],
            };
            self.ok(EXEC_A, close);
        }
    }
}

#[test]
fn a_cron_fires_once_per_period_whenever_the_tick_runs() {
    let mut w = World::new();
    // World time is 1000 s: the next multiple of 5 s is 1005.
    let added = w.add_cron(cron("0/5 * * * * *", -1, false));
    assert_eq!(added.nextrun.unix_nanos(), Some(1005 * SECOND));
    assert_eq!(added.checkerperiod, 1000);
    w.now = 1004 * SECOND;
    w.ok("", Op::Tick);
    assert!(w.graphs().is_empty(), "not due yet");
    w.now = 1005 * SECOND;
    w.ok("", Op::Tick);
    w.ok("", Op::Tick);
    let graphs = w.graphs();
    assert_eq!(
        graphs.len(),
        1,
        "one workflow per period, however many ticks"
    );
    assert_eq!(
        graphs[0].initiatorname, "a",
        "started on behalf of the cron's creator"
    );
    let fired = w.cron(&added.cronid);
    assert_eq!(fired.lastrun.unix_nanos(), Some(1005 * SECOND));
    assert_eq!(fired.nextrun.unix_nanos(), Some(1010 * SECOND));
    assert_eq!(fired.prevprocessgraphid, graphs[0].processgraphid);
    // A late tick fires the missed period once, then waits for the next.
    w.now = 1023 * SECOND;
    w.ok("", Op::Tick);
    assert_eq!(w.graphs().len(), 2);
    assert_eq!(
        w.cron(&added.cronid).nextrun.unix_nanos(),
        Some(1025 * SECOND)
    );
}

#[test]
fn a_waiting_cron_skips_while_its_previous_run_runs_and_feeds_the_next() {
    let mut w = World::new();
    let added = w.add_cron(cron("", 10, true));
    assert_eq!(added.nextrun.unix_nanos(), Some(1010 * SECOND));
    w.now = 1010 * SECOND;
    w.ok("", Op::Tick);
    assert_eq!(w.graphs().len(), 1);
    w.now = 1020 * SECOND;
    w.ok("", Op::Tick);
    assert_eq!(w.graphs().len(), 1, "the previous workflow still runs");
    assert_eq!(
        w.cron(&added.cronid).nextrun.unix_nanos(),
        Some(1030 * SECOND)
    );
    let run = Op::RunCron {
        cronid: added.cronid.clone(),
    };
    assert_eq!(w.refused(EXEC_A, run.clone()), ErrorCode::BadRequest);
    w.finish_two_step_workflow();
    w.now = 1030 * SECOND;
    w.ok("", Op::Tick);
    assert_eq!(w.graphs().len(), 2);
    let root = w.assign(EXEC_A).expect("the new root");
    assert_eq!(root.spec.nodename, "first");
    assert_eq!(
        root.input,
        vec![json!("last")],
        "the previous leaves' output"
    );
    // Run now, on demand, once the previous run ended.
    let close = Op::CloseSuccessful {
        processid: root.processid.clone(),
        out: vec![],
    };
    w.ok(EXEC_A, close);
    w.finish_two_step_workflow_rest();
    let Reply::Cron(ran) = w.ok(EXEC_A, run) else {
        panic!("a cron")
    };
    assert_eq!(w.graphs().len(), 3);
    assert_eq!(
        ran.nextrun.unix_nanos(),
        Some(1040 * SECOND),
        "schedule unchanged"
    );
}

impl World {
    /// Runs the remaining `last` process of a two-step workflow.
    fn finish_two_step_workflow_rest(&mut self) {
        let p = self.assign(EXEC_A).expect("the last process");
        let close = Op::CloseSuccessful {
            processid: p.processid.clone(),
            out: vec![],
        };
        self.ok(EXEC_A, close);
    }
}

#[test]
fn invalid_crons_are_refused_with_reasons() {
    let mut w = World::new();
    let mut bad_workflow = cron("", 10, false);
    bad_workflow.workflowspec = "{not json".into();
    let mut cycle = cron("", 10, false);
    cycle.workflowspec = workflow_text(&[("a", &["b"]), ("b", &["a"])]);
    let mut random = cron("* * * * * *", -1, false);
    random.random = true;
    for (cron, reason) in [
        (cron("", 0, false), "interval"),
        (cron("* * * *", -1, false), "6 fields"),
        (cron("0 0 0 30 2 *", -1, false), "never matches"),
        (bad_workflow, "not a workflow"),
        (cycle, "cycle"),
        (random, "random"),
    ] {
        let error = w.run(EXEC_A, Op::AddCron(Box::new(cron))).unwrap_err();
        assert!(
            error.message.contains(reason),
            "{} vs {reason}",
            error.message
        );
    }
    assert_eq!(
        w.refused(STRANGER, Op::AddCron(Box::new(cron("", 10, false)))),
        ErrorCode::Forbidden
    );
}

fn generator(trigger: i64, timeout: i64) -> Generator {
    Generator {
        colonyname: "dev".into(),
        name: format!("gen-{trigger}-{timeout}"),
        workflowspec: workflow_text(&[("first", &[]), ("last", &["first"])]),
        trigger,
        timeout,
        ..Generator::default()
    }
}

#[test]
fn generators_start_a_workflow_per_trigger_args_or_on_timeout() {
    let mut w = World::new();
    let Reply::Generator(by_count) = w.ok(EXEC_A, Op::AddGenerator(Box::new(generator(2, 0))))
    else {
        panic!("a generator")
    };
    let duplicate = Op::AddGenerator(Box::new(generator(2, 0)));
    assert_eq!(w.refused(EXEC_A, duplicate), ErrorCode::Conflict);
    let pack = |id: &str, arg: &str| Op::PackGenerator {
        generatorid: id.into(),
        arg: arg.into(),
    };
    w.ok(EXEC_B, pack(&by_count.generatorid, "x"));
    assert!(w.graphs().is_empty());
    let found = crate::state::generators::by_name(&w.state, "dev", "gen-2-0").unwrap();
    assert_eq!(found.unwrap().queuesize, 1);
    w.ok(EXEC_B, pack(&by_count.generatorid, "y"));
    assert_eq!(w.graphs().len(), 1);
    let root = w.assign(EXEC_A).expect("the root");
    assert_eq!(root.spec.args, vec![json!("x"), json!("y")]);
    assert_eq!(root.spec.nodename, "first");
    // Timeout: trigger 5, timeout 10 s; one arg waits, then runs alone.
    let Reply::Generator(by_time) = w.ok(EXEC_A, Op::AddGenerator(Box::new(generator(5, 10))))
    else {
        panic!("a generator")
    };
    w.ok(EXEC_A, pack(&by_time.generatorid, "lonely"));
    w.now += 9 * SECOND;
    w.ok("", Op::Tick);
    assert_eq!(w.graphs().len(), 1);
    w.now += 2 * SECOND;
    w.ok("", Op::Tick);
    assert_eq!(w.graphs().len(), 2);
    let g = crate::state::generators::by_name(&w.state, "dev", "gen-5-10").unwrap();
    assert_eq!(g.unwrap().queuesize, 0);
    // Removing the colony removes generators, their arguments and crons.
    w.ok(EXEC_A, pack(&by_time.generatorid, "left behind"));
    w.add_cron(cron("", 10, false));
    w.ok(
        SERVER,
        Op::RemoveColony {
            colonyname: "dev".into(),
        },
    );
    let leftovers = w.state.entries.keys().filter(|(t, _)| {
        use keys::Table as T;
        matches!(
            t,
            T::Crons
                | T::CronsByColony
                | T::CronsDue
                | T::Generators
                | T::GeneratorsByName
                | T::GeneratorArgs
                | T::GeneratorsDue
        )
    });
    assert_eq!(leftovers.count(), 0);
}
