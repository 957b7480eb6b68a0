//! The history checker: pure functions from a run's history and the converged final state to
//! the list of violated guarantees. Each rule names the processes and events that break it.
//!
//! The workload gives processes no `maxexectime` and no retries, so a process is assigned at
//! most once in its life; that makes "never assigned to two executors at once" checkable
//! without knowing server-side lease times.

use crate::history::{Event, Kind, Outcome, Seen};
use proto::process::process_state as ps;
use std::collections::{BTreeMap, BTreeSet};

/// What the mesh holds once every fault is healed and the nodes agree.
#[derive(Clone, Debug, Default)]
pub struct Final {
    /// Every process the history mentions, as the converged state has it, by id.
    pub processes: BTreeMap<String, Seen>,
    /// Processes in the colony at the end, in any state (from its statistics).
    pub total: u64,
    /// Per node: name, applied index, state digest.
    pub digests: Vec<(String, u64, String)>,
    /// Nodes in the mesh (each must report a digest).
    pub nodes: usize,
    /// When the last fault was healed, in ms since the start.
    pub healed_ms: u64,
}

/// Counts for the summary line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub submits_ok: usize,
    pub submits_unknown: usize,
    pub assigns_ok: usize,
    pub closes_ok: usize,
    pub rogue_refused: usize,
    pub reads_ok: usize,
    pub unknown_outcomes: usize,
}

pub fn counts(events: &[Event]) -> Counts {
    let mut counts = Counts::default();
    for event in events {
        match (event.kind, event.outcome) {
            (Kind::Submit, Outcome::Ok) => counts.submits_ok += 1,
            (Kind::Submit, Outcome::Info) => counts.submits_unknown += 1,
            (Kind::Assign, Outcome::Ok) => counts.assigns_ok += 1,
            (Kind::Close, Outcome::Ok) => counts.closes_ok += 1,
            (Kind::Rogue, Outcome::Fail) => counts.rogue_refused += 1,
            (Kind::Read, Outcome::Ok) => counts.reads_ok += 1,
            _ => {}
        }
        if event.outcome == Outcome::Info {
            counts.unknown_outcomes += 1;
        }
    }
    counts
}

/// Every violated guarantee, one line each; empty when the run is clean.
pub fn check(events: &[Event], fin: &Final) -> Vec<String> {
    let mut violations = Vec::new();
    acknowledged_submits_survive(events, fin, &mut violations);
    no_phantom_processes(events, fin, &mut violations);
    assigned_at_most_once(events, fin, &mut violations);
    closed_once_by_the_assignee(events, fin, &mut violations);
    terminal_states_never_change(events, fin, &mut violations);
    nodes_converge(fin, &mut violations);
    progress_after_heal(events, fin, &mut violations);
    violations
}

fn ok(events: &[Event], kind: Kind) -> impl Iterator<Item = &Event> {
    events
        .iter()
        .filter(move |e| e.kind == kind && e.outcome == Outcome::Ok)
}

fn describe(event: &Event) -> String {
    format!(
        "{:?} by {} via {} at {}-{} ms",
        event.kind, event.client, event.node, event.start_ms, event.end_ms
    )
}

fn acknowledged_submits_survive(events: &[Event], fin: &Final, out: &mut Vec<String>) {
    for event in ok(events, Kind::Submit) {
        let (Some(id), Some(tag)) = (&event.processid, &event.tag) else {
            out.push(format!("acknowledged submit without id or tag: {event:?}"));
            continue;
        };
        match fin.processes.get(id) {
            None => out.push(format!(
                "acknowledged submit {tag} (process {id}, {}) is lost",
                describe(event)
            )),
            Some(seen) if &seen.tag != tag => out.push(format!(
                "process {id} was acknowledged for tag {tag} but holds tag {}",
                seen.tag
            )),
            Some(_) => {}
        }
    }
}

fn no_phantom_processes(events: &[Event], fin: &Final, out: &mut Vec<String>) {
    let mut tags: BTreeMap<&str, &str> = BTreeMap::new();
    for (id, seen) in &fin.processes {
        if let Some(other) = tags.insert(&seen.tag, id) {
            out.push(format!(
                "tag {} is held by two processes, {other} and {id} (a submit applied twice)",
                seen.tag
            ));
        }
    }
    let acked = ok(events, Kind::Submit).count() as u64;
    let attempted = events
        .iter()
        .filter(|e| e.kind == Kind::Submit && e.outcome != Outcome::Fail)
        .count() as u64;
    if fin.total < acked {
        out.push(format!(
            "the colony holds {} processes but {acked} submits were acknowledged",
            fin.total
        ));
    }
    if fin.total > attempted {
        out.push(format!(
            "the colony holds {} processes but only {attempted} submits may have happened \
             (duplicates or phantoms)",
            fin.total
        ));
    }
}

fn assigned_at_most_once(events: &[Event], fin: &Final, out: &mut Vec<String>) {
    let mut assigns: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for event in ok(events, Kind::Assign) {
        match &event.processid {
            Some(id) => assigns.entry(id).or_default().push(event),
            None => out.push(format!("acknowledged assign without a process: {event:?}")),
        }
    }
    for (id, acks) in &assigns {
        if acks.len() > 1 {
            let who: Vec<String> = acks.iter().map(|e| describe(e)).collect();
            out.push(format!(
                "process {id} was assigned {} times: {}",
                acks.len(),
                who.join("; ")
            ));
        }
    }
    let mut seen_assignees: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let reads =
        ok(events, Kind::Read).filter_map(|e| Some((e.processid.as_deref()?, e.seen.as_ref()?)));
    let finals = fin.processes.iter().map(|(id, seen)| (id.as_str(), seen));
    for (id, seen) in reads.chain(finals) {
        if !seen.assigned.is_empty() {
            seen_assignees.entry(id).or_default().insert(&seen.assigned);
        }
    }
    for (id, assignees) in seen_assignees {
        if assignees.len() > 1 {
            out.push(format!("process {id} was seen assigned to {assignees:?}"));
        }
    }
}

fn closed_once_by_the_assignee(events: &[Event], fin: &Final, out: &mut Vec<String>) {
    let assignee: BTreeMap<&str, &str> = ok(events, Kind::Assign)
        .filter_map(|e| Some((e.processid.as_deref()?, e.executor.as_deref()?)))
        .collect();
    let mut closes: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.outcome == Outcome::Ok) {
        if !matches!(event.kind, Kind::Close | Kind::Rogue) {
            continue;
        }
        let (Some(id), Some(closer)) = (event.processid.as_deref(), event.executor.as_deref())
        else {
            out.push(format!(
                "acknowledged close without process or executor: {event:?}"
            ));
            continue;
        };
        closes.entry(id).or_default().push(event);
        if event.kind == Kind::Rogue {
            out.push(format!(
                "process {id} was closed by {closer}, to which it was not assigned ({})",
                describe(event)
            ));
        } else if let Some(owner) = assignee.get(id).filter(|owner| **owner != closer) {
            out.push(format!(
                "process {id} assigned to {owner} was closed by {closer}"
            ));
        }
        let expected = Seen {
            state: ps::SUCCESS,
            assigned: closer.to_string(),
            output: vec![serde_json::Value::String(closer.to_string())],
            tag: String::new(),
        };
        match fin.processes.get(id) {
            Some(seen)
                if seen.state == expected.state
                    && seen.assigned == expected.assigned
                    && seen.output == expected.output => {}
            other => out.push(format!(
                "process {id} closed by {closer} ended as {other:?}, not successful with its output"
            )),
        }
    }
    for (id, acks) in closes {
        if acks.len() > 1 {
            let who: Vec<String> = acks.iter().map(|e| describe(e)).collect();
            out.push(format!(
                "process {id} was closed {} times: {}",
                acks.len(),
                who.join("; ")
            ));
        }
    }
}

fn terminal_states_never_change(events: &[Event], fin: &Final, out: &mut Vec<String>) {
    for event in ok(events, Kind::Read) {
        let (Some(id), Some(seen)) = (&event.processid, &event.seen) else {
            continue;
        };
        if !ps::is_terminal(seen.state) {
            continue;
        }
        let last = fin.processes.get(id);
        let same = last.is_some_and(|last| {
            last.state == seen.state && last.assigned == seen.assigned && last.output == seen.output
        });
        if !same {
            out.push(format!(
                "process {id} was seen terminal ({seen:?}, {}) but ended as {last:?}",
                describe(event)
            ));
        }
    }
}

fn nodes_converge(fin: &Final, out: &mut Vec<String>) {
    if fin.digests.len() != fin.nodes {
        out.push(format!(
            "{} of {} nodes reported a state digest",
            fin.digests.len(),
            fin.nodes
        ));
    }
    if let Some((_, index, digest)) = fin.digests.first() {
        for (name, other_index, other_digest) in &fin.digests {
            if other_index != index {
                out.push(format!(
                    "nodes did not converge to one applied index: {name} at {other_index}, \
                     {} at {index}",
                    fin.digests[0].0
                ));
            } else if other_digest != digest {
                out.push(format!(
                    "nodes diverge: {name} has digest {other_digest} at index {other_index}, \
                     {} has {digest} at {index}",
                    fin.digests[0].0
                ));
            }
        }
    }
}

fn progress_after_heal(events: &[Event], fin: &Final, out: &mut Vec<String>) {
    let progressed = ok(events, Kind::Close).any(|e| e.start_ms >= fin.healed_ms);
    if !progressed {
        out.push(format!(
            "no process completed after the faults were healed at {} ms",
            fin.healed_ms
        ));
    }
}

#[cfg(test)]
mod tests;
