//! The chaos workload: submitters (unique tags), executors that long-poll, assign and close,
//! a rogue that tries to close processes assigned to others, and readers. Every request ends
//! up in the history with its outcome; nothing here judges, the checker does.

use crate::history::{Event, History, Kind, Outcome, Seen};
use node::client::{Client, ClientError};
use proto::msgs::{
    AssignMsg, CloseSuccessfulMsg, ColonyMsg, ExecutorMsg, ExecutorNameMsg, ProcessIdMsg, SubmitMsg,
};
use proto::{Colony, Executor, FunctionSpec, PrivateKey, Process, Request};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const COLONY: &str = "chaos";
const WORKER_TYPE: &str = "worker";
/// Longest wait for one request; a paused node must not stall a client for long.
const CALL_WAIT: Duration = Duration::from_secs(5);
/// Server-side long-poll of one assign, in seconds.
const ASSIGN_POLL: i64 = 1;
/// Close attempts for one assigned process when outcomes stay unknown.
const CLOSE_TRIES: usize = 5;

/// How many clients of each kind.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub submitters: usize,
    pub executors: usize,
    pub readers: usize,
}

/// Who the clients are and where the nodes are; shared by all tasks.
pub struct Workload {
    pub history: History,
    /// Name and client of every node.
    targets: Vec<(String, Client)>,
    /// Submits and reads.
    client_key: PrivateKey,
    /// Executor names and keys; `e1`, `e2`, ...
    executors: Vec<(String, PrivateKey)>,
    names_by_id: HashMap<String, String>,
    /// Process ids of acknowledged submits.
    submitted: Mutex<Vec<String>>,
    /// Acknowledged assignments: process id and executor index.
    assigned: Mutex<Vec<(String, usize)>>,
    stop: AtomicBool,
}

/// The outcome of a failed call: `Fail` when the node gave a definite refusal.
fn outcome_of(error: &ClientError) -> Outcome {
    match error {
        ClientError::Api {
            status: 400 | 403 | 404 | 409,
            ..
        } => Outcome::Fail,
        _ => Outcome::Info,
    }
}

async fn call<T: serde::de::DeserializeOwned>(
    client: &Client,
    request: &Request,
    key: &PrivateKey,
    extra: Duration,
) -> Result<T, (Outcome, String)> {
    let json = client.call_raw(request, Some(key), extra);
    match tokio::time::timeout(CALL_WAIT + extra, json).await {
        Err(_) => Err((
            Outcome::Info,
            format!("no answer within {:?}", CALL_WAIT + extra),
        )),
        Ok(Err(error)) => Err((outcome_of(&error), error.to_string())),
        Ok(Ok(json)) => serde_json::from_str(&json).map_err(|e| (Outcome::Info, e.to_string())),
    }
}

fn new_key(rng: &mut StdRng) -> PrivateKey {
    PrivateKey::from_entropy(rng.gen())
}

impl Workload {
    /// Registers colony `chaos`, the client and the executors through the nodes (retrying on
    /// unknown outcomes, since faults may already be underway).
    pub async fn provision(
        history: History,
        targets: Vec<(String, Client)>,
        server: &PrivateKey,
        sizes: Sizes,
        seed: u64,
    ) -> anyhow::Result<Arc<Workload>> {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        let colony_key = new_key(&mut rng);
        let client_key = new_key(&mut rng);
        let executors: Vec<(String, PrivateKey)> = (1..=sizes.executors)
            .map(|i| (format!("e{i}"), new_key(&mut rng)))
            .collect();
        let client = &targets[0].1;
        let colony = Colony {
            colonyid: colony_key.id(),
            name: COLONY.into(),
        };
        let _: Colony =
            setup_call(client, &Request::AddColony(ColonyMsg { colony }), server).await?;
        let members = std::iter::once(("client".to_string(), client_key.clone(), "client")).chain(
            executors
                .iter()
                .map(|(n, k)| (n.clone(), k.clone(), WORKER_TYPE)),
        );
        for (name, key, executortype) in members {
            let executor = Executor {
                executorid: key.id(),
                executorname: name.clone(),
                executortype: executortype.into(),
                colonyname: COLONY.into(),
                ..Executor::default()
            };
            let add = Request::AddExecutor(ExecutorMsg { executor });
            let _: Executor = setup_call(client, &add, &colony_key).await?;
            let approve = Request::ApproveExecutor(ExecutorNameMsg {
                colonyname: COLONY.into(),
                executorname: name,
            });
            let _: serde_json::Value = setup_call(client, &approve, &colony_key).await?;
        }
        let names_by_id = executors.iter().map(|(n, k)| (k.id(), n.clone())).collect();
        Ok(Arc::new(Workload {
            history,
            targets,
            client_key,
            executors,
            names_by_id,
            submitted: Mutex::default(),
            assigned: Mutex::default(),
            stop: AtomicBool::new(false),
        }))
    }

    /// Starts every client task; each runs until `stop`.
    pub fn spawn(self: &Arc<Self>, sizes: Sizes, seed: u64) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let rng = |n: u64| StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(n));
        for i in 0..sizes.submitters {
            let (me, rng) = (self.clone(), rng(100 + i as u64));
            tasks.push(tokio::spawn(async move { me.submitter(i, rng).await }));
        }
        for i in 0..sizes.executors {
            let (me, rng) = (self.clone(), rng(200 + i as u64));
            tasks.push(tokio::spawn(async move { me.executor(i, rng).await }));
        }
        for i in 0..sizes.readers {
            let (me, rng) = (self.clone(), rng(300 + i as u64));
            tasks.push(tokio::spawn(async move { me.reader(i, rng).await }));
        }
        tasks
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }

    fn event(&self, kind: Kind, client: &str, node: usize, start_ms: u64) -> Event {
        let mut event = Event::new(kind, Outcome::Ok, client, &self.targets[node].0);
        event.start_ms = start_ms;
        event
    }

    fn finish<T>(&self, mut event: Event, result: &Result<T, (Outcome, String)>) {
        event.end_ms = self.history.now_ms();
        if let Err((outcome, error)) = result {
            event.outcome = *outcome;
            event.error = Some(error.clone());
        }
        self.history.record(event);
    }

    async fn submitter(&self, index: usize, mut rng: StdRng) {
        let name = format!("submitter-{}", index + 1);
        let mut seq = 0u64;
        while self.running() {
            seq += 1;
            let tag = format!("{name}-{seq}");
            let node = rng.gen_range(0..self.targets.len());
            let mut spec = FunctionSpec {
                funcname: "chaos".into(),
                args: vec![tag.clone().into()],
                maxwaittime: -1,
                maxexectime: -1,
                maxretries: 0,
                ..FunctionSpec::default()
            };
            spec.conditions.colonyname = COLONY.into();
            spec.conditions.executortype = WORKER_TYPE.into();
            let mut event = self.event(Kind::Submit, &name, node, self.history.now_ms());
            event.tag = Some(tag);
            let request = Request::Submit(SubmitMsg { spec });
            let result: Result<Process, _> = call(
                &self.targets[node].1,
                &request,
                &self.client_key,
                Duration::ZERO,
            )
            .await;
            if let Ok(process) = &result {
                event.processid = Some(process.processid.clone());
                self.submitted
                    .lock()
                    .expect("lock")
                    .push(process.processid.clone());
            }
            self.finish(event, &result);
            tokio::time::sleep(Duration::from_millis(rng.gen_range(5..40))).await;
        }
    }

    async fn executor(&self, index: usize, mut rng: StdRng) {
        let (name, key) = self.executors[index].clone();
        let mut node = index % self.targets.len();
        while self.running() {
            let request = Request::Assign(AssignMsg {
                colonyname: COLONY.into(),
                timeout: ASSIGN_POLL,
                ..AssignMsg::default()
            });
            let start = self.history.now_ms();
            let wait = Duration::from_secs(ASSIGN_POLL as u64);
            let result: Result<Process, _> =
                call(&self.targets[node].1, &request, &key, wait).await;
            let process = match result {
                Ok(process) => process,
                // Nothing to assign: a definite, uninteresting answer.
                Err((Outcome::Fail, _)) => continue,
                Err(_) => {
                    let mut event = self.event(Kind::Assign, &name, node, start);
                    event.executor = Some(name.clone());
                    self.finish(event, &result);
                    node = rng.gen_range(0..self.targets.len());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let mut event = self.event(Kind::Assign, &name, node, start);
            event.executor = Some(name.clone());
            event.processid = Some(process.processid.clone());
            self.finish(event, &Ok::<(), (Outcome, String)>(()));
            self.assigned
                .lock()
                .expect("lock")
                .push((process.processid.clone(), index));
            self.close(&name, &key, &process.processid, &mut node, &mut rng)
                .await;
        }
    }

    /// Closes an assigned process, retrying while the outcome is unknown.
    async fn close(
        &self,
        name: &str,
        key: &PrivateKey,
        processid: &str,
        node: &mut usize,
        rng: &mut StdRng,
    ) {
        for _ in 0..CLOSE_TRIES {
            let request = Request::CloseSuccessful(CloseSuccessfulMsg {
                processid: processid.to_string(),
                out: vec![name.into()],
            });
            let mut event = self.event(Kind::Close, name, *node, self.history.now_ms());
            event.executor = Some(name.to_string());
            event.processid = Some(processid.to_string());
            let result: Result<serde_json::Value, _> =
                call(&self.targets[*node].1, &request, key, Duration::ZERO).await;
            let unknown = matches!(result, Err((Outcome::Info, _)));
            self.finish(event, &result);
            if !unknown {
                return;
            }
            *node = rng.gen_range(0..self.targets.len());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn reader(&self, index: usize, mut rng: StdRng) {
        let name = format!("reader-{}", index + 1);
        let mut round = 0u64;
        while self.running() {
            round += 1;
            tokio::time::sleep(Duration::from_millis(rng.gen_range(10..40))).await;
            if round % 20 == 0 {
                self.rogue_close(&mut rng).await;
                continue;
            }
            let processid = {
                let submitted = self.submitted.lock().expect("lock");
                match submitted.len() {
                    0 => continue,
                    n => submitted[rng.gen_range(0..n)].clone(),
                }
            };
            let node = rng.gen_range(0..self.targets.len());
            let mut event = self.event(Kind::Read, &name, node, self.history.now_ms());
            event.processid = Some(processid.clone());
            let request = Request::GetProcess(ProcessIdMsg { processid });
            let result: Result<Process, _> = call(
                &self.targets[node].1,
                &request,
                &self.client_key,
                Duration::ZERO,
            )
            .await;
            if let Ok(process) = &result {
                event.seen = Some(self.seen(process));
            }
            self.finish(event, &result);
        }
    }

    /// An executor closes a process assigned to another executor; must be refused.
    async fn rogue_close(&self, rng: &mut StdRng) {
        let pick = {
            let assigned = self.assigned.lock().expect("lock");
            match assigned.len() {
                0 => return,
                n => assigned[rng.gen_range(0..n)].clone(),
            }
        };
        let (processid, owner) = pick;
        let others = self.executors.len() - 1;
        if others == 0 {
            return;
        }
        let rogue = (owner + 1 + rng.gen_range(0..others)) % self.executors.len();
        let (name, key) = &self.executors[rogue];
        let node = rng.gen_range(0..self.targets.len());
        let mut event = self.event(Kind::Rogue, name, node, self.history.now_ms());
        event.executor = Some(name.clone());
        event.processid = Some(processid.clone());
        let request = Request::CloseSuccessful(CloseSuccessfulMsg {
            processid,
            out: vec![name.clone().into()],
        });
        let result: Result<serde_json::Value, _> =
            call(&self.targets[node].1, &request, key, Duration::ZERO).await;
        self.finish(event, &result);
    }

    /// What a read of `process` shows, with executor ids turned into names.
    pub fn seen(&self, process: &Process) -> Seen {
        let assigned = match process.assignedexecutorid.as_str() {
            "" => String::new(),
            id => self
                .names_by_id
                .get(id)
                .cloned()
                .unwrap_or_else(|| id.to_string()),
        };
        let tag = process
            .spec
            .args
            .first()
            .and_then(|a| a.as_str())
            .unwrap_or_default()
            .to_string();
        Seen {
            state: process.state,
            assigned,
            output: process.output.clone(),
            tag,
        }
    }

    /// The client key (reads of the final state).
    pub fn client_key(&self) -> &PrivateKey {
        &self.client_key
    }
}

/// A setup request, retried (bounded) until it gets a definite answer.
async fn setup_call<T: serde::de::DeserializeOwned>(
    client: &Client,
    request: &Request,
    key: &PrivateKey,
) -> anyhow::Result<T> {
    let mut last = String::new();
    for _ in 0..20 {
        match call(client, request, key, Duration::ZERO).await {
            Ok(value) => return Ok(value),
            Err((Outcome::Fail, error)) => anyhow::bail!("{}: {error}", request.msgtype()),
            Err((_, error)) => last = error,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("{} kept failing: {last}", request.msgtype())
}
