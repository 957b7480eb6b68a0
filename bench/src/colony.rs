//! Scenarios against Colonymesh nodes, with signed requests like a real client. The nodes and
//! keys come from the `COLONIES_*` exports of `colonymesh dev` or `testnet/up`; `BENCH_PORTS`
//! lists the API ports of every node (clients are spread over them).

use crate::stats::{rss_mib, Latency, Record};
use anyhow::Context as _;
use node::client::Client;
use proto::msgs::{AssignMsg, CloseSuccessfulMsg, ExecutorMsg, ExecutorNameMsg, SubmitMsg};
use proto::{Executor, FunctionSpec, PrivateKey, Process, Request};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Executor type of the processes that only fill the queue (writes and backlog scenarios).
const SINK: &str = "bench-sink";
/// Assignments measured per backlog size.
const BACKLOG_SAMPLES: usize = 200;

/// Where the nodes are and who the client is.
#[derive(Clone)]
pub(crate) struct Target {
    /// One client per node; client `i` of a scenario talks to node `i % len`.
    pub(crate) nodes: Vec<Client>,
    pub(crate) executor: PrivateKey,
    pub(crate) colony_key: PrivateKey,
    pub(crate) colony: String,
    pub(crate) executortype: String,
    /// Pids of the node processes, for RSS (`BENCH_NODE_PIDS`).
    pub(crate) pids: Vec<u32>,
    /// Name of the system in the results (`colonymesh-1`, `colonymesh-3`).
    pub(crate) system: String,
}

impl Target {
    pub(crate) fn from_env(vars: &HashMap<String, String>) -> anyhow::Result<Target> {
        let var = |name: &str| {
            vars.get(name)
                .cloned()
                .with_context(|| format!("{name} is not set"))
        };
        let host = var("COLONIES_SERVER_HOST")?;
        let first = var("COLONIES_SERVER_HTTP_PORT").or_else(|_| var("COLONIES_SERVER_PORT"))?;
        let ports = vars.get("BENCH_PORTS").cloned().unwrap_or(first);
        let nodes = ports
            .split(',')
            .map(|p| {
                Ok(Client::new(
                    &host,
                    p.trim().parse().context("parse BENCH_PORTS")?,
                    false,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let pids = match vars.get("BENCH_NODE_PIDS") {
            Some(pids) => pids
                .split(',')
                .map(|p| p.trim().parse().context("parse BENCH_NODE_PIDS"))
                .collect::<anyhow::Result<Vec<u32>>>()?,
            None => Vec::new(),
        };
        Ok(Target {
            nodes,
            executor: PrivateKey::from_hex(&var("COLONIES_PRVKEY")?)?,
            colony_key: PrivateKey::from_hex(&var("COLONIES_COLONY_PRVKEY")?)?,
            colony: var("COLONIES_COLONY_NAME")?,
            executortype: var("COLONIES_EXECUTOR_TYPE")?,
            pids,
            system: vars
                .get("BENCH_SYSTEM")
                .cloned()
                .unwrap_or_else(|| "colonymesh".into()),
        })
    }

    pub(crate) fn node(&self, i: usize) -> &Client {
        &self.nodes[i % self.nodes.len()]
    }

    pub(crate) fn submit(&self, executortype: &str) -> Request {
        let mut spec = FunctionSpec {
            funcname: "bench".into(),
            maxwaittime: -1,
            maxexectime: -1,
            maxretries: -1,
            ..FunctionSpec::default()
        };
        spec.conditions.colonyname = self.colony.clone();
        spec.conditions.executortype = executortype.to_string();
        Request::Submit(SubmitMsg { spec })
    }

    pub(crate) fn assign(&self, timeout: i64) -> Request {
        Request::Assign(AssignMsg {
            colonyname: self.colony.clone(),
            timeout,
            ..AssignMsg::default()
        })
    }

    pub(crate) fn close(processid: String) -> Request {
        Request::CloseSuccessful(CloseSuccessfulMsg {
            processid,
            out: vec![],
        })
    }

    fn rss(&self) -> Option<f64> {
        let all: Vec<f64> = self.pids.iter().filter_map(|&pid| rss_mib(pid)).collect();
        (!all.is_empty()).then(|| all.iter().cloned().fold(0.0, f64::max))
    }

    /// Dispatch latency: an executor long-polls on the last node; one client submits on the
    /// first; time from sending the submit to the executor holding the assignment.
    pub(crate) async fn dispatch(&self, count: usize) -> anyhow::Result<()> {
        let mut samples = Vec::with_capacity(count);
        let executor_node = self.node(self.nodes.len() - 1).clone();
        // The first rounds warm up connections and caches; they are not counted.
        let warmup = 20;
        for round in 0..count + warmup {
            let (client, key, assign) = (
                executor_node.clone(),
                self.executor.clone(),
                self.assign(10),
            );
            let waiting = tokio::spawn(async move { client.assign(&assign, &key, 10).await });
            // Let the long-poll register on its node before submitting.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let start = Instant::now();
            let submitted: Process = self
                .node(0)
                .call(&self.submit(&self.executortype), &self.executor)
                .await?;
            let assigned = waiting.await??;
            if round >= warmup {
                samples.push(start.elapsed());
            }
            anyhow::ensure!(
                assigned.processid == submitted.processid,
                "assigned another process"
            );
            let _: serde_json::Value = self
                .node(0)
                .call(&Self::close(assigned.processid), &self.executor)
                .await?;
        }
        let mut record = Record::new(&self.system, "dispatch", 1);
        record.latency = Latency::of(samples);
        record.emit()
    }

    /// Lifecycle throughput: `clients` tasks each loop submit -> assign -> close for `seconds`.
    /// The latency reported is the whole lifecycle's.
    pub(crate) async fn lifecycle(&self, clients: usize, seconds: u64) -> anyhow::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let assign_samples = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..clients {
            let (me, stop, samples, assign_samples, failures) = (
                self.clone(),
                stop.clone(),
                samples.clone(),
                assign_samples.clone(),
                failures.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let node = me.node(i).clone();
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let round = async {
                        let _: Process = node
                            .call(&me.submit(&me.executortype), &me.executor)
                            .await?;
                        let t = Instant::now();
                        let process = node.assign(&me.assign(-1), &me.executor, 0).await?;
                        let assign_time = t.elapsed();
                        let _: serde_json::Value = node
                            .call(&Self::close(process.processid), &me.executor)
                            .await?;
                        anyhow::Ok(assign_time)
                    };
                    match round.await {
                        Ok(assign_time) => {
                            samples.lock().expect("lock").push(start.elapsed());
                            assign_samples.lock().expect("lock").push(assign_time);
                        }
                        Err(_) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let samples = std::mem::take(&mut *samples.lock().expect("lock"));
        let mut record = Record::new(&self.system, "lifecycle", clients);
        record.rate = samples.len() as f64 / elapsed;
        record.latency = Latency::of(samples);
        let assigns = Latency::of(std::mem::take(&mut *assign_samples.lock().expect("lock")));
        record
            .extra
            .insert("assign_p50_ms".into(), round3(assigns.p50_ms));
        record
            .extra
            .insert("failed".into(), failures.load(Ordering::Relaxed).into());
        record.emit()
    }

    /// Durable writes: `clients` tasks submit processes nobody assigns (type `bench-sink`)
    /// for `seconds`, or until `total` submits when given. Returns how many were written.
    pub(crate) async fn writes(
        &self,
        clients: usize,
        seconds: u64,
        total: Option<usize>,
        scenario: &str,
    ) -> anyhow::Result<usize> {
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicUsize::new(0));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..clients {
            let (me, stop, issued, samples) =
                (self.clone(), stop.clone(), issued.clone(), samples.clone());
            tasks.push(tokio::spawn(async move {
                let node = me.node(i).clone();
                let request = me.submit(SINK);
                let mut local = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if total.is_some_and(|t| issued.fetch_add(1, Ordering::Relaxed) >= t) {
                        break;
                    }
                    let start = Instant::now();
                    if node.call::<Process>(&request, &me.executor).await.is_ok() {
                        local.push(start.elapsed());
                    }
                }
                samples.lock().expect("lock").extend(local);
            }));
        }
        let started = Instant::now();
        let limit = Duration::from_secs(seconds);
        let mut tasks = futures_join(tasks);
        let finished = tokio::select! {
            _ = tokio::time::sleep(limit) => false,
            _ = &mut tasks => true,
        };
        if !finished {
            stop.store(true, Ordering::Relaxed);
            tasks.await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let samples = std::mem::take(&mut *samples.lock().expect("lock"));
        let written = samples.len();
        let mut record = Record::new(&self.system, scenario, clients);
        record.rate = written as f64 / elapsed;
        record.latency = Latency::of(samples);
        if !scenario.is_empty() {
            record.emit()?;
        }
        Ok(written)
    }

    /// Registers the executor that drains the sink (idempotent enough: an existing one is fine).
    async fn sink_executor(&self) -> anyhow::Result<PrivateKey> {
        let key = PrivateKey::from_entropy([0x5a; 32]);
        let executor = Executor {
            executorid: key.id(),
            executorname: "bench-sink".into(),
            executortype: SINK.into(),
            colonyname: self.colony.clone(),
            ..Executor::default()
        };
        let add = Request::AddExecutor(ExecutorMsg { executor });
        if self
            .node(0)
            .call::<Executor>(&add, &self.colony_key)
            .await
            .is_ok()
        {
            let approve = Request::ApproveExecutor(ExecutorNameMsg {
                colonyname: self.colony.clone(),
                executorname: "bench-sink".into(),
            });
            let _: serde_json::Value = self.node(0).call(&approve, &self.colony_key).await?;
        }
        Ok(key)
    }

    /// Backlog: fills the sink queue to each size in `sizes` (with `clients` writers), then
    /// measures assign latency (one client, one-try assigns) and the largest node RSS.
    pub(crate) async fn backlog(
        &self,
        sizes: &[usize],
        clients: usize,
        already: usize,
    ) -> anyhow::Result<()> {
        let sink = self.sink_executor().await?;
        let mut waiting = already;
        for &size in sizes {
            if size > waiting {
                let fill_start = Instant::now();
                let added = self
                    .writes(clients, 24 * 3600, Some(size - waiting), "")
                    .await?;
                waiting += added;
                eprintln!(
                    "backlog: filled to {waiting} in {:.1} s",
                    fill_start.elapsed().as_secs_f64()
                );
            }
            // The queue holds what earlier scenarios left too: report what it really holds.
            let measured_at = waiting;
            let mut samples = Vec::with_capacity(BACKLOG_SAMPLES);
            for _ in 0..BACKLOG_SAMPLES {
                let start = Instant::now();
                let process = self.node(0).assign(&self.assign(-1), &sink, 0).await?;
                samples.push(start.elapsed());
                let _: serde_json::Value = self
                    .node(0)
                    .call(&Self::close(process.processid), &sink)
                    .await?;
            }
            waiting -= BACKLOG_SAMPLES;
            let mut record = Record::new(&self.system, &format!("backlog-{size}"), 1);
            record.latency = Latency::of(samples);
            if let Some(rss) = self.rss() {
                record.extra.insert("rss_mib".into(), round3(rss));
            }
            record.extra.insert("waiting".into(), measured_at.into());
            record.emit()?;
        }
        Ok(())
    }
}

fn round3(x: f64) -> serde_json::Value {
    ((x * 1000.0).round() / 1000.0).into()
}

/// One future that finishes when every task has.
fn futures_join(
    tasks: Vec<tokio::task::JoinHandle<()>>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move {
        for task in tasks {
            let _ = task.await;
        }
    })
}
