//! Assign long-polls parked on the leader, where assignments are decided. An executor's
//! long-poll on any node, finding nothing to run, is handed to the leader (`AwaitAssign`) and
//! parked here by (colony, executor type). When the leader's batcher forms an entry holding a
//! `Submit` that a parked executor can run, it adds that executor's `Assign` right behind it:
//! the dispatch is one commit, and one wake-up mesh-wide. Work enqueued otherwise (a released
//! workflow child, a retry, a resumed colony) wakes the longest-parked executor of its key
//! when the leader applies it.
//!
//! ```text
//!   api assign (any node) --AwaitAssign{caller, colony, base, wait}--> park()
//!   batcher: [.., Submit(spec), ..] --pair_submit--> [.., Submit, Assign(attempt id), ..]
//!   apply on the leader: Enqueued (not paired) / Resumed --> propose the parked Assign
//!   batch committed --settle--> Answered(process) | parked again | Nothing after the attempts
//! ```
//!
//! Attempts are `Op::AssignFor` with the long-poll's key: however many are proposed (on this
//! leader or the next), at most one assigns a process and the others answer that process, so
//! a waiter that lost track of an attempt parks again with `resume` and gets what it was
//! assigned. At most `ASSIGN_ATTEMPTS_MAX` attempts per `AwaitAssign`.

use super::batcher::{Batcher, WeakBatcher};
use super::{Error, NodeId};
use crate::clock::Clock;
use crate::state::{auth, query};
use crate::store::Store;
use proto::command::{Command, Op, Reply, Response};
use proto::mesh::{AssignWait, AssignWaited, ASSIGN_ATTEMPTS_MAX};
use proto::{Executor, FunctionSpec};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::oneshot;

/// Long-polls parked at once; past it a poll is answered "nothing" at once and the waiting
/// node polls again (its own long-poll limit bounds how many it holds).
const PARKED_MAX: usize = 10_000;
/// Submits remembered as paired with a parked poll, so the wake-up of their process is not
/// spent twice; the oldest are forgotten (a forgotten one costs one extra `Assign`).
const PAIRED_REMEMBERED_MAX: usize = 4096;

type Key = (String, String);

/// One parked long-poll. Owned by the registry while it waits, by the batcher while one of its
/// attempts is being committed.
pub(super) struct Parked {
    ticket: u64,
    wait: AssignWait,
    /// The executor as the leader's replica knew it at parking time (its conditions for
    /// pairing); `None` when unknown there (its attempt then gets apply's refusal).
    executor: Option<Executor>,
    executortype: String,
    /// Attempts proposed so far.
    attempts: u8,
    outcome: oneshot::Sender<AssignWaited>,
}

impl Parked {
    /// The next attempt's command, stamped by `clock`.
    fn next_command(&mut self, clock: &dyn Clock) -> Command {
        let command = Command {
            now_nanos: clock.now_nanos(),
            request_id: clock.request_id(),
            caller_id: self.wait.caller.clone(),
            op: Op::AssignFor {
                key: self.wait.key.clone(),
                colonyname: self.wait.colonyname.clone(),
                cpu_millis: self.wait.cpu_millis,
                mem_mib: self.wait.mem_mib,
            },
        };
        self.attempts += 1;
        command
    }

    /// Tells the waiter `answer`.
    pub(super) fn answer(self, answer: AssignWaited) {
        let _ = self.outcome.send(answer);
    }

    /// The waiter gave up (its receiver is gone): nothing more to do for it.
    pub(super) fn abandoned(&self) -> bool {
        self.outcome.is_closed()
    }

    fn key(&self) -> Key {
        (self.wait.colonyname.clone(), self.executortype.clone())
    }
}

/// The registry of parked long-polls on this node (used while it leads).
pub(super) struct Parking {
    inner: Mutex<Inner>,
    /// The leader's replica: is there work already, and who is the executor.
    store: Store,
    /// Stamps the attempts' commands.
    clock: Arc<dyn Clock>,
    /// Where attempts are proposed; set once the batcher runs (it holds this registry too).
    batcher: OnceLock<WeakBatcher>,
}

#[derive(Default)]
struct Inner {
    /// Parked tickets per (colony, executor type), longest-waiting first.
    queues: HashMap<Key, VecDeque<u64>>,
    parked: HashMap<u64, Parked>,
    next_ticket: u64,
    /// Request ids of submits paired with a parked poll, oldest first.
    paired: VecDeque<String>,
    paired_set: HashSet<String>,
}

impl Inner {
    fn insert(&mut self, parked: Parked) {
        self.queues
            .entry(parked.key())
            .or_default()
            .push_back(parked.ticket);
        self.parked.insert(parked.ticket, parked);
    }

    /// Removes and returns the first parked poll of `key` that `accept` takes.
    fn take(&mut self, key: &Key, accept: impl Fn(&Parked) -> bool) -> Option<Parked> {
        let queue = self.queues.get_mut(key)?;
        let mut found = None;
        let mut index = 0;
        while index < queue.len() {
            let ticket = queue[index];
            match self.parked.get(&ticket) {
                // Abandoned polls are dropped as they are met.
                Some(parked) if parked.abandoned() => {
                    queue.remove(index);
                    self.parked.remove(&ticket);
                }
                Some(parked) if accept(parked) => {
                    queue.remove(index);
                    found = self.parked.remove(&ticket);
                    break;
                }
                Some(_) => index += 1,
                None => {
                    queue.remove(index);
                }
            }
        }
        if queue.is_empty() {
            self.queues.remove(key);
        }
        found
    }

    fn remember_paired(&mut self, request_id: &str) {
        if self.paired.len() >= PAIRED_REMEMBERED_MAX {
            if let Some(oldest) = self.paired.pop_front() {
                self.paired_set.remove(&oldest);
            }
        }
        self.paired.push_back(request_id.to_string());
        self.paired_set.insert(request_id.to_string());
    }
}

/// A parked poll's place in the registry and the receiver of its outcome.
pub(super) struct Ticket {
    pub(super) id: u64,
    pub(super) outcome: oneshot::Receiver<AssignWaited>,
}

impl Parking {
    pub(super) fn new(store: Store, clock: Arc<dyn Clock>) -> Parking {
        Parking {
            inner: Mutex::default(),
            store,
            clock,
            batcher: OnceLock::new(),
        }
    }

    pub(super) fn set_batcher(&self, batcher: &Batcher) {
        let _ = self.batcher.set(batcher.downgrade());
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every change completes under the lock; a panic cannot leave the maps torn.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks `wait`, or proposes its first attempt at once when the leader's replica already
    /// holds work it can run, or the poll resumes after an unknown outcome. `None` means
    /// "nothing" at once: a one-try poll (`wait_ms` 0) with nothing to run, or a full registry.
    pub(super) fn park(&self, wait: AssignWait) -> Option<Ticket> {
        let executor = {
            let view = self.store.view();
            match auth::require_member(&view, &wait.colonyname, &wait.caller, true) {
                Ok(Ok(auth::Member::Executor(executor))) => Some(*executor),
                _ => None,
            }
        };
        let (sender, receiver) = oneshot::channel();
        let executortype = executor
            .as_ref()
            .map(|e| e.executortype.clone())
            .unwrap_or_default();
        let mut parked = Parked {
            ticket: 0,
            wait,
            executor,
            executortype,
            attempts: 0,
            outcome: sender,
        };
        // Resuming, or unknown here (the attempt then gets apply's answer, a refusal): propose.
        let propose_now = parked.wait.resume || parked.executor.is_none();
        let mut inner = self.inner();
        inner.next_ticket += 1;
        parked.ticket = inner.next_ticket;
        let ticket = Ticket {
            id: parked.ticket,
            outcome: receiver,
        };
        if propose_now {
            drop(inner);
            self.propose(parked);
            return Some(ticket);
        }
        if inner.parked.len() >= PARKED_MAX {
            return None;
        }
        let (wait_ms, executor) = (parked.wait.wait_ms, parked.executor.clone());
        let (cpu, mem, colony) = (
            parked.wait.cpu_millis,
            parked.wait.mem_mib,
            parked.wait.colonyname.clone(),
        );
        // Parked before looking: work submitted after the look finds it.
        inner.insert(parked);
        drop(inner);
        let runnable = {
            let view = self.store.view();
            let paused = crate::state::colonies::is_paused(&view, &colony).unwrap_or(false);
            let executor = executor.as_ref().expect("checked above");
            !paused && query::has_match(&view, executor, cpu, mem).unwrap_or(true)
        };
        match (runnable, wait_ms) {
            (false, 0) if self.cancel(ticket.id) => None,
            (true, _) => {
                let taken = self.take(ticket.id);
                if let Some(parked) = taken {
                    self.propose(parked);
                }
                Some(ticket)
            }
            // Waiting; or paired meanwhile (its outcome is coming).
            _ => Some(ticket),
        }
    }

    /// Takes the parked poll `ticket` out of the registry, if it is there.
    fn take(&self, ticket: u64) -> Option<Parked> {
        let mut inner = self.inner();
        let parked = inner.parked.remove(&ticket)?;
        let key = parked.key();
        if let Some(queue) = inner.queues.get_mut(&key) {
            queue.retain(|t| *t != ticket);
            if queue.is_empty() {
                inner.queues.remove(&key);
            }
        }
        Some(parked)
    }

    /// Takes a parked poll out of the registry when its wait ends; false when one of its
    /// attempts is being committed (its outcome is coming) or it was answered already.
    pub(super) fn cancel(&self, ticket: u64) -> bool {
        self.take(ticket).is_some()
    }

    /// For a `Submit` about to be proposed: the parked poll it should wake, with that poll's
    /// next attempt to propose right behind the submit.
    pub(super) fn pair_submit(&self, submit: &Command) -> Option<(Command, Parked)> {
        let Op::Submit(spec) = &submit.op else {
            return None;
        };
        let spec: &FunctionSpec = spec;
        let key = (
            spec.conditions.colonyname.clone(),
            spec.conditions.executortype.clone(),
        );
        let mut inner = self.inner();
        if !inner.queues.contains_key(&key) {
            return None;
        }
        let mut parked = inner.take(&key, |parked| match &parked.executor {
            Some(executor) => {
                query::could_run(executor, spec, parked.wait.cpu_millis, parked.wait.mem_mib)
            }
            None => false,
        })?;
        inner.remember_paired(&submit.request_id);
        drop(inner);
        let command = parked.next_command(self.clock.as_ref());
        Some((command, parked))
    }

    /// True (once) when the submit with `request_id` was paired with a parked poll: the
    /// wake-up of its process has been given already.
    pub(super) fn was_paired(&self, request_id: &str) -> bool {
        let mut inner = self.inner();
        if !inner.paired_set.remove(request_id) {
            return false;
        }
        inner.paired.retain(|id| id != request_id);
        true
    }

    /// A process became assignable for (colony, executor type): the longest-parked poll of
    /// that key proposes an attempt.
    pub(super) fn enqueued(&self, colony: &str, executortype: &str) {
        let key = (colony.to_string(), executortype.to_string());
        let taken = self.inner().take(&key, |_| true);
        if let Some(parked) = taken {
            self.propose(parked);
        }
    }

    /// Assignments of `colony` were resumed: every poll parked for it proposes an attempt.
    pub(super) fn resumed(&self, colony: &str) {
        let mut taken = Vec::new();
        {
            let mut inner = self.inner();
            let keys: Vec<Key> = inner
                .queues
                .keys()
                .filter(|(c, _)| c == colony)
                .cloned()
                .collect();
            for key in keys {
                while let Some(parked) = inner.take(&key, |_| true) {
                    taken.push(parked);
                }
            }
        }
        for parked in taken {
            self.propose(parked);
        }
    }

    /// The processes of these executors were released (their node went silent): their parked
    /// polls, which would take work to an executor that cannot hear of it, are answered
    /// "nothing" (an executor whose node is in fact alive parks again).
    pub(super) fn released(&self, executor_ids: &[String]) {
        let released: Vec<Parked> = {
            let mut inner = self.inner();
            let tickets: Vec<u64> = inner
                .parked
                .values()
                .filter(|p| executor_ids.contains(&p.wait.caller))
                .map(|p| p.ticket)
                .collect();
            tickets
                .into_iter()
                .filter_map(|ticket| {
                    let parked = inner.parked.remove(&ticket)?;
                    if let Some(queue) = inner.queues.get_mut(&parked.key()) {
                        queue.retain(|t| *t != ticket);
                    }
                    Some(parked)
                })
                .collect()
        };
        for parked in released {
            parked.answer(AssignWaited::Nothing);
        }
    }

    /// This node no longer leads: every parked poll hears so (nothing of theirs is in flight).
    pub(super) fn drain(&self, leader: Option<NodeId>) {
        let parked: Vec<Parked> = {
            let mut inner = self.inner();
            inner.queues.clear();
            inner.parked.drain().map(|(_, p)| p).collect()
        };
        for parked in parked {
            let _ = parked.outcome.send(AssignWaited::NotLeader { leader });
        }
    }

    /// Parked polls now (for tests and metrics).
    pub(super) fn len(&self) -> usize {
        self.inner().parked.len()
    }

    /// Proposes `parked`'s next attempt through the batcher.
    fn propose(&self, mut parked: Parked) {
        if parked.abandoned() {
            return;
        }
        let Some(batcher) = self.batcher.get().and_then(WeakBatcher::upgrade) else {
            let reason = "the proposal batcher is not running".to_string();
            let _ = parked.outcome.send(AssignWaited::Unknown { reason });
            return;
        };
        let command = parked.next_command(self.clock.as_ref());
        tokio::spawn(async move { batcher.propose_parked(command, parked).await });
    }

    /// The outcome of one attempt of `parked`. `paired` is the response of the submit it was
    /// paired with, if any: when the attempt did not take that submit's process, the process's
    /// wake-up goes to the next parked poll.
    pub(super) fn settle(
        &self,
        parked: Parked,
        outcome: Result<Response, Error>,
        paired: Option<&Response>,
    ) {
        let taken = match &outcome {
            Ok(Response(Ok(Reply::Process(process)))) => Some(process.processid.as_str()),
            _ => None,
        };
        if let Some(Response(Ok(Reply::Process(submitted)))) = paired {
            let colony = &submitted.spec.conditions.colonyname;
            let executortype = &submitted.spec.conditions.executortype;
            if taken != Some(submitted.processid.as_str()) {
                self.enqueued(colony, executortype);
            }
        }
        let answer = match outcome {
            Ok(Response(Ok(Reply::NothingToAssign | Reply::AssignmentsPaused))) => {
                // A one-try poll is answered after its one attempt.
                match parked.wait.wait_ms > 0 && parked.attempts < ASSIGN_ATTEMPTS_MAX {
                    // Another executor was faster, or the work was not for this one: wait on.
                    true => {
                        if !parked.abandoned() {
                            self.inner().insert(parked);
                        }
                        return;
                    }
                    false => AssignWaited::Nothing,
                }
            }
            Ok(response) => AssignWaited::Answered(response),
            // Refused before it was appended, and every earlier attempt was answered: nothing
            // of this poll is in flight.
            Err(Error::NotLeader { leader }) => AssignWaited::NotLeader { leader },
            Err(error) => AssignWaited::Unknown {
                reason: error.to_string(),
            },
        };
        let _ = parked.outcome.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::command::Response;

    const SERVER: &str = "0000000000000000000000000000000000000000000000000000000000000001";
    const OWNER: &str = "0000000000000000000000000000000000000000000000000000000000000002";
    const EXEC: &str = "00000000000000000000000000000000000000000000000000000000000000aa";

    /// A store holding colony "dev" with the approved executor EXEC ("a", type "cli").
    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let executor = Executor {
            executorid: EXEC.into(),
            executorname: "a".into(),
            executortype: "cli".into(),
            colonyname: "dev".into(),
            ..Executor::default()
        };
        let colony = proto::Colony {
            colonyid: OWNER.into(),
            name: "dev".into(),
        };
        let ops = [
            (
                "",
                Op::InitServer {
                    server_id: SERVER.into(),
                },
            ),
            (SERVER, Op::AddColony(colony)),
            (OWNER, Op::AddExecutor(Box::new(executor))),
            (
                OWNER,
                Op::SetExecutorApproval {
                    colonyname: "dev".into(),
                    executorname: "a".into(),
                    approved: true,
                },
            ),
        ];
        for (i, (caller, op)) in ops.into_iter().enumerate() {
            let command = Command {
                now_nanos: 1,
                request_id: format!("{i:032x}"),
                caller_id: caller.into(),
                op,
            };
            let applied = crate::state::apply(&store.applying(), &command).unwrap();
            assert!(applied.response.0.is_ok(), "{:?}", applied.response);
            store.commit_state(applied.writes, b"{}").unwrap();
        }
        (dir, store)
    }

    fn parking(store: &Store) -> Parking {
        Parking::new(
            store.clone(),
            Arc::new(crate::clock::ManualClock::default()),
        )
    }

    fn wait(wait_ms: u64) -> AssignWait {
        AssignWait {
            caller: EXEC.into(),
            colonyname: "dev".into(),
            cpu_millis: None,
            mem_mib: None,
            key: "k".repeat(32),
            wait_ms,
            resume: false,
        }
    }

    fn submit(executornames: Vec<String>) -> Command {
        let mut spec = FunctionSpec::default();
        spec.conditions.colonyname = "dev".into();
        spec.conditions.executortype = "cli".into();
        spec.conditions.executornames = executornames;
        Command {
            now_nanos: 2,
            request_id: "5".repeat(32),
            caller_id: EXEC.into(),
            op: Op::Submit(Box::new(spec)),
        }
    }

    /// - with no work, a poll is parked until its wait ends (cancel takes it out once)
    /// - a one-try poll with no work is answered "nothing" at once, never parked
    #[test]
    fn polls_without_work_park_and_one_tries_do_not() {
        let (_dir, store) = store();
        let parking = parking(&store);
        let ticket = parking.park(wait(1000)).expect("parked");
        assert_eq!(parking.len(), 1);
        assert!(parking.cancel(ticket.id));
        assert!(!parking.cancel(ticket.id));
        assert_eq!(parking.len(), 0);
        assert!(
            parking.park(wait(0)).is_none(),
            "nothing to run: answered at once"
        );
        assert_eq!(parking.len(), 0);
    }

    /// - a submit the parked executor can run takes the poll's `AssignFor` behind it
    /// - its process's wake-up is marked as given, once
    /// - a submit for other executors (by name) leaves the poll parked
    #[test]
    fn a_matching_submit_pairs_with_the_parked_poll() {
        let (_dir, store) = store();
        let parking = parking(&store);
        let _ticket = parking.park(wait(1000)).expect("parked");
        assert!(parking.pair_submit(&submit(vec!["b".into()])).is_none());
        assert_eq!(parking.len(), 1);
        let submit = submit(vec![]);
        let (command, _parked) = parking.pair_submit(&submit).expect("paired");
        assert_eq!(command.caller_id, EXEC);
        let Op::AssignFor {
            key, colonyname, ..
        } = &command.op
        else {
            panic!("an AssignFor, got {:?}", command.op);
        };
        assert_eq!(
            (key.as_str(), colonyname.as_str()),
            ("k".repeat(32).as_str(), "dev")
        );
        assert_eq!(parking.len(), 0);
        assert!(parking.was_paired(&submit.request_id));
        assert!(!parking.was_paired(&submit.request_id));
    }

    /// - an attempt that finds nothing parks the poll again, up to the attempt limit, then
    ///   answers "nothing"; an attempt that assigns answers the process
    #[test]
    fn attempts_park_again_until_the_limit() {
        let (_dir, store) = store();
        let parking = parking(&store);
        let mut ticket = parking.park(wait(1000)).expect("parked");
        let nothing = || Ok(Response(Ok(Reply::NothingToAssign)));
        for _ in 1..ASSIGN_ATTEMPTS_MAX {
            let (_, parked) = parking.pair_submit(&submit(vec![])).expect("paired");
            parking.settle(parked, nothing(), None);
            assert_eq!(parking.len(), 1, "parked again");
        }
        let (_, parked) = parking.pair_submit(&submit(vec![])).expect("paired");
        parking.settle(parked, nothing(), None);
        assert_eq!(parking.len(), 0);
        assert_eq!(ticket.outcome.try_recv().ok(), Some(AssignWaited::Nothing));

        let mut ticket = parking.park(wait(1000)).expect("parked");
        let (_, parked) = parking.pair_submit(&submit(vec![])).expect("paired");
        let process = proto::Process {
            processid: "p".into(),
            ..Default::default()
        };
        let assigned = Response(Ok(Reply::Process(Box::new(process))));
        parking.settle(parked, Ok(assigned.clone()), None);
        assert_eq!(
            ticket.outcome.try_recv().ok(),
            Some(AssignWaited::Answered(assigned))
        );
    }

    /// - a node that stops leading answers every parked poll "not the leader"
    #[test]
    fn losing_leadership_releases_every_parked_poll() {
        let (_dir, store) = store();
        let parking = parking(&store);
        let mut first = parking.park(wait(1000)).expect("parked");
        let mut second = parking.park(wait(1000)).expect("parked");
        parking.drain(Some(7));
        let released = AssignWaited::NotLeader { leader: Some(7) };
        assert_eq!(first.outcome.try_recv().ok(), Some(released.clone()));
        assert_eq!(second.outcome.try_recv().ok(), Some(released));
        assert_eq!(parking.len(), 0);
    }
}
