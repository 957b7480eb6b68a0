//! The checker on small hand-made histories: a clean run passes, and each kind of violation
//! is reported.

use super::{check, Final};
use crate::history::{Event, Kind, Outcome, Seen};
use proto::process::process_state as ps;

fn event(kind: Kind, outcome: Outcome, at: u64) -> Event {
    let mut event = Event::new(kind, outcome, "c", "n1");
    event.start_ms = at;
    event.end_ms = at + 1;
    event
}

fn submit(tag: &str, id: &str, at: u64) -> Event {
    let mut e = event(Kind::Submit, Outcome::Ok, at);
    e.tag = Some(tag.into());
    e.processid = Some(id.into());
    e
}

fn by(kind: Kind, outcome: Outcome, id: &str, executor: &str, at: u64) -> Event {
    let mut e = event(kind, outcome, at);
    e.processid = Some(id.into());
    e.executor = Some(executor.into());
    e
}

fn done(tag: &str, executor: &str) -> Seen {
    Seen {
        state: ps::SUCCESS,
        assigned: executor.into(),
        output: vec![executor.into()],
        tag: tag.into(),
    }
}

fn read(id: &str, seen: Seen, at: u64) -> Event {
    let mut e = event(Kind::Read, Outcome::Ok, at);
    e.processid = Some(id.into());
    e.seen = Some(seen);
    e
}

/// p1 submitted, assigned to e1, closed by e1; a rogue close by e2 refused; p2 waiting.
fn clean() -> (Vec<Event>, Final) {
    let events = vec![
        submit("t1", "p1", 0),
        submit("t2", "p2", 1),
        by(Kind::Assign, Outcome::Ok, "p1", "e1", 2),
        by(Kind::Rogue, Outcome::Fail, "p1", "e2", 3),
        by(Kind::Close, Outcome::Ok, "p1", "e1", 10),
        read("p1", done("t1", "e1"), 12),
    ];
    let mut fin = Final {
        total: 2,
        nodes: 2,
        healed_ms: 5,
        digests: vec![("n1".into(), 9, "d".into()), ("n2".into(), 9, "d".into())],
        ..Final::default()
    };
    fin.processes.insert("p1".into(), done("t1", "e1"));
    let waiting = Seen {
        state: ps::WAITING,
        tag: "t2".into(),
        ..Seen::default()
    };
    fin.processes.insert("p2".into(), waiting);
    (events, fin)
}

fn violations_of(events: &[Event], fin: &Final) -> String {
    check(events, fin).join("\n")
}

#[test]
fn a_clean_history_passes() {
    let (events, fin) = clean();
    assert_eq!(check(&events, &fin), Vec::<String>::new());
}

#[test]
fn a_lost_acknowledged_submit_is_reported() {
    let (events, mut fin) = clean();
    fin.processes.remove("p2");
    assert!(violations_of(&events, &fin).contains("acknowledged submit t2 (process p2"));
}

#[test]
fn duplicate_and_phantom_processes_are_reported() {
    let (events, mut fin) = clean();
    fin.processes.get_mut("p2").unwrap().tag = "t1".into();
    fin.total = 3;
    let report = violations_of(&events, &fin);
    assert!(
        report.contains("tag t1 is held by two processes"),
        "{report}"
    );
    assert!(
        report.contains("only 2 submits may have happened"),
        "{report}"
    );
}

#[test]
fn a_second_assignment_is_reported() {
    let (mut events, fin) = clean();
    events.push(by(Kind::Assign, Outcome::Ok, "p1", "e2", 4));
    assert!(violations_of(&events, &fin).contains("process p1 was assigned 2 times"));
    let (mut events, fin) = clean();
    let mut running = done("t1", "e2");
    running.state = ps::RUNNING;
    events.push(read("p1", running, 4));
    assert!(violations_of(&events, &fin).contains("process p1 was seen assigned to"));
}

#[test]
fn closes_twice_or_by_others_are_reported() {
    let (mut events, fin) = clean();
    events.push(by(Kind::Close, Outcome::Ok, "p1", "e1", 11));
    assert!(violations_of(&events, &fin).contains("process p1 was closed 2 times"));
    let (mut events, fin) = clean();
    events[3].outcome = Outcome::Ok;
    assert!(violations_of(&events, &fin).contains("closed by e2, to which it was not assigned"));
    let (mut events, fin) = clean();
    events[4].executor = Some("e3".into());
    assert!(violations_of(&events, &fin).contains("assigned to e1 was closed by e3"));
}

#[test]
fn a_changed_terminal_state_is_reported() {
    let (mut events, fin) = clean();
    let mut failed = done("t1", "e1");
    failed.state = ps::FAILED;
    events.push(read("p1", failed, 13));
    assert!(violations_of(&events, &fin).contains("process p1 was seen terminal"));
}

#[test]
fn divergence_and_missing_digests_are_reported() {
    let (events, mut fin) = clean();
    fin.digests[1].2 = "other".into();
    assert!(violations_of(&events, &fin).contains("nodes diverge: n2"));
    fin.digests[1].1 = 10;
    assert!(violations_of(&events, &fin).contains("did not converge to one applied index"));
    fin.digests.pop();
    assert!(violations_of(&events, &fin).contains("1 of 2 nodes reported"));
}

#[test]
fn no_progress_after_the_heal_is_reported() {
    let (events, mut fin) = clean();
    fin.healed_ms = 50;
    assert!(violations_of(&events, &fin).contains("no process completed after"));
}
