//! Tests of the colony's registries and controls: functions and their run statistics, process
//! and executor logs, locations, pausing assignments, and changing identities.

use super::*;
use crate::state::query::LogSource;
use proto::{Function, Location};

const USER: &str = "00000000000000000000000000000000000000000000000000000000000000c1";
const NEW_ID: &str = "00000000000000000000000000000000000000000000000000000000000000d1";

fn function(executorname: &str, funcname: &str) -> Op {
    Op::AddFunction(Box::new(Function {
        executorname: executorname.into(),
        colonyname: "dev".into(),
        funcname: funcname.into(),
        ..Function::default()
    }))
}

#[test]
fn functions_are_registered_by_their_executor_and_count_runs() {
    let mut w = World::new();
    assert_eq!(
        w.refused(EXEC_B, function("a", "echo")),
        ErrorCode::Forbidden
    );
    assert_eq!(
        w.refused(OWNER, function("a", "echo")),
        ErrorCode::Forbidden
    );
    let Reply::Function(added) = w.ok(EXEC_A, function("a", "echo")) else {
        panic!("a function")
    };
    assert_eq!(added.executortype, "cli");
    assert_eq!(added.functionid.len(), 64);
    assert_eq!(
        w.refused(EXEC_A, function("a", "echo")),
        ErrorCode::Conflict
    );
    w.ok(EXEC_B, function("b", "echo"));
    assert_eq!(query::functions(&w.state, "dev", "").unwrap().len(), 2);
    // A run on executor a: waits 1 s, runs 2 s.
    let p = w.submit(spec("echo"));
    w.now += SECOND;
    assert_eq!(w.assign(EXEC_A).unwrap().processid, p.processid);
    w.now += 2 * SECOND;
    let close = Op::CloseSuccessful {
        processid: p.processid.clone(),
        out: vec![],
    };
    w.ok(EXEC_A, close);
    let mine = query::functions(&w.state, "dev", "a").unwrap();
    assert_eq!(mine[0].counter, 1);
    assert_eq!((mine[0].avgwaittime, mine[0].avgexectime), (1.0, 2.0));
    let theirs = query::functions(&w.state, "dev", "b").unwrap();
    assert_eq!(theirs[0].counter, 0, "only the executor that ran it counts");
    let remove = Op::RemoveFunction {
        functionid: added.functionid.clone(),
    };
    assert_eq!(w.refused(EXEC_B, remove.clone()), ErrorCode::Forbidden);
    w.ok(EXEC_A, remove);
    assert!(query::function(&w.state, &added.functionid)
        .unwrap()
        .is_none());
    // Removing an executor removes the functions it registered.
    let executor = Op::RemoveExecutor {
        colonyname: "dev".into(),
        executorname: "b".into(),
    };
    w.ok(OWNER, executor);
    assert!(query::functions(&w.state, "dev", "").unwrap().is_empty());
}

#[test]
fn logs_are_written_by_the_running_executor_and_read_in_order() {
    let mut w = World::new();
    let p = w.submit(spec("echo"));
    let log = |message: &str| Op::AddProcessLog {
        processid: p.processid.clone(),
        message: message.into(),
    };
    assert_eq!(
        w.refused(EXEC_A, log("early")),
        ErrorCode::Forbidden,
        "not running"
    );
    w.assign(EXEC_A).unwrap();
    assert_eq!(w.refused(EXEC_B, log("other")), ErrorCode::Forbidden);
    for line in ["one", "two", "three"] {
        w.now += SECOND;
        w.ok(EXEC_A, log(line));
    }
    let huge = "x".repeat(64 * 1024 + 1);
    let error = w.run(EXEC_A, log(&huge)).unwrap_err();
    assert!(
        error.message.contains("longer than the limit"),
        "{}",
        error.message
    );
    let read = |w: &World, count, since, latest| {
        let source = LogSource::Process(&p.processid);
        let found = query::logs(&w.state, source, count, since, latest).unwrap();
        found.into_iter().map(|l| l.message).collect::<Vec<_>>()
    };
    assert_eq!(read(&w, 10, 0, false), ["one", "two", "three"]);
    assert_eq!(read(&w, 2, 0, false), ["one", "two"]);
    assert_eq!(read(&w, 2, 0, true), ["two", "three"]);
    let first = query::logs(&w.state, LogSource::Process(&p.processid), 1, 0, false).unwrap();
    assert_eq!(first[0].executorname, "a");
    assert_eq!(read(&w, 10, first[0].timestamp, false), ["two", "three"]);
    // A line added by the command of apply level 1 stays in the process's log only.
    w.now += SECOND;
    let legacy = Op::AddLog {
        processid: p.processid.clone(),
        message: "four".into(),
    };
    w.ok(EXEC_A, legacy);
    assert_eq!(read(&w, 10, 0, false), ["one", "two", "three", "four"]);
    // Executor logs: written by the executor itself only; they hold its own lines and the
    // lines it added to its processes (level 2), in time order, with the same count, since
    // and latest rules.
    w.now += SECOND;
    let executor_log = |name: &str| Op::AddExecutorLog {
        colonyname: "dev".into(),
        executorname: name.into(),
        message: "started three".into(),
    };
    assert_eq!(w.refused(EXEC_B, executor_log("a")), ErrorCode::Forbidden);
    w.ok(EXEC_A, executor_log("a"));
    let by_executor = |w: &World, name, count, since, latest| {
        let source = LogSource::Executor {
            colony: "dev",
            name,
        };
        let found = query::logs(&w.state, source, count, since, latest).unwrap();
        found
            .into_iter()
            .map(|l| (l.processid.is_empty(), l.message))
            .collect::<Vec<_>>()
    };
    let line = |own: bool, message: &str| (own, message.to_string());
    assert_eq!(
        by_executor(&w, "a", 10, 0, false),
        [
            line(false, "one"),
            line(false, "two"),
            line(false, "three"),
            line(true, "started three")
        ]
    );
    assert_eq!(
        by_executor(&w, "a", 2, 0, true),
        [line(false, "three"), line(true, "started three")]
    );
    assert_eq!(
        by_executor(&w, "a", 2, first[0].timestamp, false),
        [line(false, "two"), line(false, "three")]
    );
    assert!(by_executor(&w, "b", 10, 0, false).is_empty());
    // Search: newest first, within the time window.
    let found = query::search_logs(&w.state, "dev", "three", 0, 10).unwrap();
    let messages: Vec<_> = found.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["started three", "three"]);
    assert!(query::search_logs(&w.state, "dev", "three", w.now + 1, 10)
        .unwrap()
        .is_empty());
    // Removing the colony removes its logs.
    let remove = Op::RemoveColony {
        colonyname: "dev".into(),
    };
    w.ok(SERVER, remove);
    let leftovers = w.state.entries.keys().filter(|(t, _)| {
        matches!(
            t,
            keys::Table::Logs | keys::Table::ExecutorLogs | keys::Table::LogsByTime
        )
    });
    assert_eq!(leftovers.count(), 0);
}

#[test]
fn locations_are_managed_by_the_colony_owner() {
    let mut w = World::new();
    let location = Location {
        name: "lab".into(),
        colonyname: "dev".into(),
        description: "the lab".into(),
        long: 18.07,
        lat: 59.33,
        ..Location::default()
    };
    assert_eq!(
        w.refused(EXEC_A, Op::AddLocation(location.clone())),
        ErrorCode::Forbidden
    );
    let Reply::Location(added) = w.ok(OWNER, Op::AddLocation(location.clone())) else {
        panic!("a location")
    };
    assert_eq!(added.locationid.len(), 64);
    assert_eq!(
        w.refused(OWNER, Op::AddLocation(location)),
        ErrorCode::Conflict
    );
    assert_eq!(
        query::location(&w.state, "dev", "lab").unwrap(),
        Some(added)
    );
    let remove = Op::RemoveLocation {
        colonyname: "dev".into(),
        name: "lab".into(),
    };
    w.ok(OWNER, remove.clone());
    assert_eq!(w.refused(OWNER, remove), ErrorCode::NotFound);
}

#[test]
fn paused_colonies_assign_nothing_until_resumed() {
    let mut w = World::new();
    let pause = |paused| Op::SetPaused {
        colonyname: "dev".into(),
        paused,
    };
    assert_eq!(w.refused(EXEC_A, pause(true)), ErrorCode::Forbidden);
    w.ok(OWNER, pause(true));
    let p = w.submit(spec("echo"));
    let assign = Op::Assign {
        colonyname: "dev".into(),
        cpu_millis: None,
        mem_mib: None,
    };
    assert_eq!(w.ok(EXEC_A, assign), Reply::AssignmentsPaused);
    w.events.clear();
    w.ok(OWNER, pause(false));
    assert_eq!(
        w.events,
        vec![Event::Resumed {
            colonyname: "dev".into()
        }]
    );
    assert_eq!(w.assign(EXEC_A).unwrap().processid, p.processid);
}

#[test]
fn identities_change_to_new_ids() {
    let mut w = World::new();
    // Server owner.
    let server = Op::ChangeServerId {
        serverid: NEW_ID.into(),
    };
    assert_eq!(w.refused(OWNER, server.clone()), ErrorCode::Forbidden);
    w.ok(SERVER, server);
    assert_eq!(auth::server_id(&w.state).unwrap().as_deref(), Some(NEW_ID));
    // Colony owner.
    let colony = |id: &str| Op::ChangeColonyId {
        colonyname: "dev".into(),
        colonyid: id.into(),
    };
    assert_eq!(w.refused(EXEC_A, colony(USER)), ErrorCode::Forbidden);
    w.ok(OWNER, colony(USER));
    assert_eq!(w.refused(OWNER, colony(OWNER)), ErrorCode::Forbidden);
    w.ok(USER, colony(OWNER));
    // A user.
    let user = proto::User {
        colonyname: "dev".into(),
        userid: USER.into(),
        name: "ann".into(),
        ..proto::User::default()
    };
    w.ok(OWNER, Op::AddUser(user));
    let change_user = |id: &str| Op::ChangeUserId {
        colonyname: "dev".into(),
        userid: id.into(),
    };
    assert_eq!(w.refused(EXEC_A, change_user(NEW_ID)), ErrorCode::Forbidden);
    w.ok(USER, change_user(NEW_ID));
    assert_eq!(
        w.refused(USER, Op::Submit(Box::new(spec("x")))),
        ErrorCode::Forbidden
    );
    w.ok(NEW_ID, Op::Submit(Box::new(spec("x"))));
    // An executor, refused while it runs a process.
    let change_executor = |id: &str| Op::ChangeExecutorId {
        colonyname: "dev".into(),
        executorid: id.into(),
    };
    assert_eq!(
        w.refused(EXEC_A, change_executor(EXEC_B)),
        ErrorCode::Conflict
    );
    w.assign(EXEC_B).unwrap();
    assert_eq!(
        w.refused(EXEC_B, change_executor(STRANGER)),
        ErrorCode::BadRequest
    );
    w.ok(EXEC_A, change_executor(STRANGER));
    assert_eq!(
        auth::executor_by_id(&w.state, STRANGER)
            .unwrap()
            .unwrap()
            .executorname,
        "a"
    );
    assert!(auth::executor_by_id(&w.state, EXEC_A).unwrap().is_none());
}

#[test]
fn channels_carry_ordered_messages_between_initiator_and_executor() {
    let mut w = World::new();
    let mut with_channel = spec("stream");
    with_channel.channels = vec!["chat".into()];
    // Submitted by EXEC_A (the initiator), run by EXEC_B.
    let p = w.submit(with_channel);
    w.assign(EXEC_B).unwrap();
    let append = |name: &str, sequence: i64, text: &str| Op::ChannelAppend {
        processid: p.processid.clone(),
        name: name.into(),
        sequence,
        inreplyto: 0,
        payload: text.as_bytes().to_vec(),
        payloadtype: String::new(),
    };
    w.ok(EXEC_A, append("chat", 1, "hello"));
    w.ok(EXEC_B, append("chat", 1, "hi back"));
    assert_eq!(
        w.refused(OWNER, append("chat", 2, "x")),
        ErrorCode::Forbidden
    );
    assert_eq!(
        w.refused(EXEC_A, append("other", 2, "x")),
        ErrorCode::NotFound
    );
    let read = |w: &World, after| {
        let found = crate::state::channels::read(&w.state, &p.processid, "chat", after, 0);
        found.unwrap()
    };
    let all = read(&w, 0);
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].0, all[1].0), (1, 2), "1-based indexes");
    assert_eq!(all[0].1.payload.0, b"hello");
    assert_eq!(all[0].1.senderid, EXEC_A);
    assert_eq!(all[1].1.senderid, EXEC_B);
    assert_eq!(read(&w, 1).len(), 1);
    assert!(w.events.contains(&Event::ChannelAppended {
        processid: p.processid.clone(),
        name: "chat".into(),
        index: 2,
    }));
    // Entries go with their process.
    let close = Op::CloseSuccessful {
        processid: p.processid.clone(),
        out: vec![],
    };
    w.ok(EXEC_B, close);
    w.ok(
        EXEC_A,
        Op::RemoveProcess {
            processid: p.processid.clone(),
        },
    );
    let left = w
        .state
        .entries
        .keys()
        .filter(|(t, _)| *t == keys::Table::Channels);
    assert_eq!(left.count(), 0);
}

fn file(label: &str, name: &str, size: i64) -> Op {
    Op::AddFile(Box::new(proto::file::File {
        colonyname: "dev".into(),
        label: label.into(),
        name: name.into(),
        size,
        checksumalg: "SHA256".into(),
        ..proto::file::File::default()
    }))
}

#[test]
fn files_keep_revisions_under_labels_and_snapshots_record_the_newest() {
    use crate::state::files;
    let mut w = World::new();
    assert_eq!(
        w.refused(STRANGER, file("/data", "a.txt", 1)),
        ErrorCode::Forbidden
    );
    let Reply::File(first) = w.ok(EXEC_A, file("data/", "a.txt", 1)) else {
        panic!("a file")
    };
    assert_eq!((first.label.as_str(), first.sequencenr), ("/data", 1));
    let Reply::File(second) = w.ok(EXEC_A, file("/data", "a.txt", 2)) else {
        panic!("a file")
    };
    assert_eq!(second.sequencenr, 2);
    w.ok(EXEC_B, file("/data", "b.txt", 3));
    w.ok(EXEC_B, file("/data/sub", "c.txt", 4));
    w.ok(EXEC_B, file("/database", "d.txt", 5));
    let revisions = files::revisions(&w.state, "dev", "/data", "a.txt").unwrap();
    assert_eq!(revisions.len(), 2);
    let latest = files::latest_in_label(&w.state, "dev", "/data").unwrap();
    let names: Vec<_> = latest.iter().map(|f| (f.name.as_str(), f.size)).collect();
    assert_eq!(names, [("a.txt", 2), ("b.txt", 3)]);
    // As ColonyOS: a plain prefix; with `exact`, the label and the labels below it, or none
    // when the label itself is not there.
    let counted = |name, exact| {
        let labels = files::labels(&w.state, "dev", name, exact).unwrap();
        labels
            .into_iter()
            .map(|l| (l.name, l.files))
            .collect::<Vec<_>>()
    };
    let label = |name: &str, files| (name.to_string(), files);
    assert_eq!(
        counted("/data", false),
        [
            label("/data", 2),
            label("/data/sub", 1),
            label("/database", 1)
        ]
    );
    assert_eq!(
        counted("/data", true),
        [label("/data", 2), label("/data/sub", 1)]
    );
    assert!(counted("/dat", true).is_empty());
    let snapshot = Op::CreateSnapshot {
        colonyname: "dev".into(),
        label: "/data".into(),
        name: "v1".into(),
    };
    let Reply::Snapshot(snap) = w.ok(EXEC_A, snapshot.clone()) else {
        panic!("a snapshot")
    };
    assert_eq!(snap.fileids.len(), 2);
    assert!(snap.fileids.contains(&second.fileid));
    assert_eq!(w.refused(EXEC_A, snapshot), ErrorCode::Conflict);
    let by_name = files::snapshot(&w.state, "dev", "", "v1").unwrap();
    assert_eq!(by_name.as_ref(), Some(&*snap));
    // Removing by label and name removes every revision and the name from its label.
    let remove = Op::RemoveFile {
        colonyname: "dev".into(),
        fileid: String::new(),
        label: "/data".into(),
        name: "a.txt".into(),
    };
    w.ok(EXEC_A, remove.clone());
    assert_eq!(w.refused(EXEC_A, remove), ErrorCode::NotFound);
    let labels = files::labels(&w.state, "dev", "", false).unwrap();
    assert_eq!(labels[0].files, 1);
    w.ok(
        EXEC_A,
        Op::RemoveAllSnapshots {
            colonyname: "dev".into(),
        },
    );
    assert!(files::snapshots(&w.state, "dev").unwrap().is_empty());
}

#[test]
fn housekeeping_expires_old_successes_and_logs_and_removes_stale_executors() {
    let mut w = World::new();
    let housekeep = |retention, stale| Op::Housekeep {
        retention_seconds: retention,
        stale_executor_seconds: stale,
    };
    assert_eq!(w.refused(OWNER, housekeep(1, 0)), ErrorCode::Forbidden);
    // An old success with a log line, an old failure, and a fresh success.
    let old = w.submit(spec("old"));
    let failed = w.submit(spec("failed"));
    w.assign(EXEC_A).unwrap();
    let log = Op::AddProcessLog {
        processid: old.processid.clone(),
        message: "old line".into(),
    };
    w.ok(EXEC_A, log);
    w.ok(
        EXEC_A,
        Op::CloseSuccessful {
            processid: old.processid.clone(),
            out: vec![],
        },
    );
    w.assign(EXEC_A).unwrap();
    w.ok(
        EXEC_A,
        Op::CloseFailed {
            processid: failed.processid.clone(),
            errors: vec![],
        },
    );
    w.now += 100 * SECOND;
    let fresh = w.submit(spec("fresh"));
    let p = w.assign(EXEC_B).unwrap();
    assert_eq!(p.processid, fresh.processid);
    w.ok("", housekeep(50, 0));
    assert!(query::process(&w.state, &old.processid).unwrap().is_none());
    assert!(
        query::process(&w.state, &failed.processid)
            .unwrap()
            .is_some(),
        "only successes"
    );
    assert!(query::process(&w.state, &fresh.processid)
        .unwrap()
        .is_some());
    let logs = w.state.entries.keys().filter(|(t, _)| {
        matches!(
            t,
            keys::Table::Logs | keys::Table::ExecutorLogs | keys::Table::LogsByTime
        )
    });
    assert_eq!(
        logs.count(),
        0,
        "expired from the process's and the executor's log"
    );
    // Stale executors: a (last heard 100 s ago) goes; b (just heard) stays and keeps running
    // its process; an executor never heard from is not stale.
    w.add_executor(USER, "new", "cli");
    w.now += 50 * SECOND;
    w.ok("", housekeep(0, 120));
    assert!(auth::executor_by_id(&w.state, EXEC_A).unwrap().is_none());
    assert!(auth::executor_by_id(&w.state, EXEC_B).unwrap().is_some());
    assert!(auth::executor_by_id(&w.state, USER).unwrap().is_some());
    w.now += 200 * SECOND;
    w.ok("", housekeep(0, 120));
    assert!(auth::executor_by_id(&w.state, EXEC_B).unwrap().is_none());
    let requeued = w.process(&fresh.processid);
    assert_eq!((requeued.state, requeued.retries), (ps::WAITING, 0));
}

#[test]
fn blueprints_have_a_reconcile_cron_per_kind_and_location() {
    use proto::blueprint::{Blueprint, BlueprintDefinition};
    let mut w = World::new();
    let mut definition = BlueprintDefinition::default();
    definition.metadata.name = "db.def".into();
    definition.metadata.colonyname = "dev".into();
    definition.spec.names.kind = "Db".into();
    definition.spec.handler.executor_type = "cli".into();
    definition.spec.handler.function_name = "reconcile".into();
    definition.spec.handler.reconcile_interval = 30;
    w.ok(
        OWNER,
        Op::AddBlueprintDefinition(Box::new(definition.clone())),
    );
    let conflict = Op::AddBlueprintDefinition(Box::new(definition));
    assert_eq!(w.refused(OWNER, conflict), ErrorCode::Conflict);
    let blueprint = |name: &str, location: &str| {
        let mut b = Blueprint {
            kind: "Db".into(),
            ..Blueprint::default()
        };
        b.metadata.name = name.into();
        b.metadata.colonyname = "dev".into();
        b.metadata.locationname = location.into();
        b
    };
    let crons = |w: &World| crate::state::crons::list(&w.state, "dev", 100).unwrap();
    w.ok(EXEC_A, Op::AddBlueprint(Box::new(blueprint("one", "lab"))));
    w.ok(EXEC_A, Op::AddBlueprint(Box::new(blueprint("two", "lab"))));
    w.ok(OWNER, Op::AddBlueprint(Box::new(blueprint("three", ""))));
    let names: Vec<_> = crons(&w)
        .into_iter()
        .map(|c| (c.name, c.interval))
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(
        names,
        [
            ("reconcile-Db".to_string(), 30),
            ("reconcile-Db-lab".to_string(), 30)
        ]
    );
    assert!(
        query::location(&w.state, "dev", "lab").unwrap().is_some(),
        "created"
    );
    let remove = |name: &str| Op::RemoveBlueprint {
        colonyname: "dev".into(),
        name: name.into(),
    };
    w.ok(EXEC_A, remove("one"));
    assert_eq!(crons(&w).len(), 2, "two is still at lab");
    w.ok(EXEC_A, remove("two"));
    assert_eq!(crons(&w).len(), 1);
    // One reconcile process per add, at the blueprint's location: executor b has none, so
    // it runs only the one for "three".
    let reconciles = (0..3).filter_map(|_| w.assign(EXEC_B)).count();
    assert_eq!(reconciles, 1);
    let waiting = query::processes(&w.state, "dev", ps::WAITING, 10, &Default::default());
    let at_lab = waiting
        .unwrap()
        .into_iter()
        .filter(|p| p.spec.conditions.locationname == "lab" && p.spec.funcname == "reconcile");
    assert_eq!(at_lab.count(), 2);
}
