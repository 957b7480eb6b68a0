//! `colonymesh-bench`: measures a running node with signed requests, like a real client.
//! Reads the `COLONIES_*` exports of `colonymesh dev` (server, colony and executor keys).
//!
//! Scenarios (one client, sequential; the figures the single-node issue asks for):
//! - `dispatch`: an executor long-polls; the submitter submits; time from sending the submit
//!   to the executor receiving the assignment.
//! - `lifecycle`: one client does submit -> assign -> close in a loop; processes per second.
//! - `failover`: the lifecycle loop for `BENCH_SECONDS`, retrying failures; reports the longest
//!   gap between successful assignments (run it while the leader is killed).
//!
//! `BENCH_ASSIGN_PORT` makes the executor use another node's API than the submitter.

use anyhow::Context as _;
use node::client::Client;
use proto::msgs::{AssignMsg, CloseSuccessfulMsg, SubmitMsg};
use proto::{FunctionSpec, PrivateKey, Process, Request};
use std::collections::HashMap;
use std::time::{Duration, Instant};

struct Setup {
    client: Client,
    /// The executor's node (the submitter's unless `BENCH_ASSIGN_PORT` is set).
    executor_client: Client,
    executor: PrivateKey,
    colony: String,
    executortype: String,
}

fn setup(vars: &HashMap<String, String>) -> anyhow::Result<Setup> {
    let var = |name: &str| {
        vars.get(name)
            .cloned()
            .with_context(|| format!("{name} is not set"))
    };
    // Like the colonies CLI: the HTTP port wins over the legacy variable.
    let port = var("COLONIES_SERVER_HTTP_PORT").or_else(|_| var("COLONIES_SERVER_PORT"))?;
    let port: u16 = port.parse().context("parse port")?;
    let host = var("COLONIES_SERVER_HOST")?;
    let assign_port = match vars.get("BENCH_ASSIGN_PORT") {
        Some(port) => port.parse().context("parse BENCH_ASSIGN_PORT")?,
        None => port,
    };
    Ok(Setup {
        client: Client::new(&host, port, false),
        executor_client: Client::new(&host, assign_port, false),
        executor: PrivateKey::from_hex(&var("COLONIES_PRVKEY")?)?,
        colony: var("COLONIES_COLONY_NAME")?,
        executortype: var("COLONIES_EXECUTOR_TYPE")?,
    })
}

impl Setup {
    fn submit(&self) -> Request {
        let mut spec = FunctionSpec {
            funcname: "bench".into(),
            maxwaittime: -1,
            maxexectime: -1,
            maxretries: -1,
            ..FunctionSpec::default()
        };
        spec.conditions.colonyname = self.colony.clone();
        spec.conditions.executortype = self.executortype.clone();
        Request::Submit(SubmitMsg { spec })
    }

    fn assign(&self, timeout: i64) -> Request {
        let colonyname = self.colony.clone();
        Request::Assign(AssignMsg {
            colonyname,
            timeout,
            ..AssignMsg::default()
        })
    }

    fn close(&self, processid: String) -> Request {
        Request::CloseSuccessful(CloseSuccessfulMsg {
            processid,
            out: vec![],
        })
    }
}

/// Percentile of sorted durations, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<28} n={:<6} p50={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        percentile(&samples, 1.0),
    );
}

async fn dispatch(setup: &Setup, count: usize) -> anyhow::Result<()> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let client = setup.executor_client.clone();
        let key = setup.executor.clone();
        let assign = setup.assign(10);
        let waiting = tokio::spawn(async move { client.assign(&assign, &key, 10).await });
        // Give the long-poll time to be registered on the node before submitting.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let start = Instant::now();
        let submitted: Process = setup.client.call(&setup.submit(), &setup.executor).await?;
        let assigned = waiting.await??;
        samples.push(start.elapsed());
        anyhow::ensure!(
            assigned.processid == submitted.processid,
            "assigned another process"
        );
        let _: serde_json::Value = setup
            .client
            .call(&setup.close(assigned.processid), &setup.executor)
            .await?;
    }
    report("dispatch (submit->assigned)", samples);
    Ok(())
}

async fn lifecycle(setup: &Setup, count: usize) -> anyhow::Result<()> {
    let (mut submits, mut assigns, mut closes) = (vec![], vec![], vec![]);
    let start = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        let _: Process = setup.client.call(&setup.submit(), &setup.executor).await?;
        submits.push(t.elapsed());
        let t = Instant::now();
        let process = setup
            .client
            .assign(&setup.assign(-1), &setup.executor, 0)
            .await?;
        assigns.push(t.elapsed());
        let t = Instant::now();
        let _: serde_json::Value = setup
            .client
            .call(&setup.close(process.processid), &setup.executor)
            .await?;
        closes.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    report("submit", submits);
    report("assign", assigns);
    report("close", closes);
    println!(
        "{:<28} {count} processes in {:.2} s = {:.0} processes/s",
        "lifecycle (sequential)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

fn unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// The lifecycle loop for `seconds`, retrying failures. With `kill_file` (written by the script
/// with the Unix ns of its `kill -9`), reports the time from the kill to the next assignment.
async fn failover(setup: &Setup, seconds: u64, kill_file: Option<&str>) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut assigned_at = Vec::new();
    let mut failures = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        let round = async {
            let _: Process = setup.client.call(&setup.submit(), &setup.executor).await?;
            let p = setup
                .executor_client
                .assign(&setup.assign(5), &setup.executor, 5)
                .await?;
            let at = unix_nanos();
            let _: serde_json::Value = setup
                .executor_client
                .call(&setup.close(p.processid), &setup.executor)
                .await?;
            anyhow::Ok(at)
        };
        match round.await {
            Ok(at) => assigned_at.push(at),
            Err(error) => {
                if failures < 3 {
                    eprintln!("failover: attempt failed: {error:#}");
                }
                failures += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let longest = assigned_at
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(0);
    let after_kill = match kill_file.map(std::fs::read_to_string) {
        Some(Ok(text)) => {
            let killed: u128 = text.trim().parse().context("parse kill time")?;
            let next = assigned_at
                .iter()
                .find(|at| **at > killed)
                .context("no success after kill")?;
            format!(
                ", kill -> next assignment {:.3} s",
                (next - killed) as f64 / 1e9
            )
        }
        _ => String::new(),
    };
    println!(
        "{:<28} {} lifecycles, {failures} failed attempts, longest gap {:.3} s{after_kill}",
        "failover",
        assigned_at.len(),
        longest as f64 / 1e9
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count: usize = match args.get(1) {
        Some(n) => n.parse().context("parse COUNT")?,
        None => 1000,
    };
    let vars: HashMap<String, String> = std::env::vars().collect();
    let setup = setup(&vars)?;
    match args.first().map(String::as_str) {
        Some("dispatch") => dispatch(&setup, count).await,
        Some("lifecycle") => lifecycle(&setup, count).await,
        Some("failover") => {
            let seconds = vars.get("BENCH_SECONDS").map_or(Ok(10), |s| s.parse())?;
            failover(
                &setup,
                seconds,
                vars.get("BENCH_KILL_FILE").map(String::as_str),
            )
            .await
        }
        Some("all") | None => {
            dispatch(&setup, count).await?;
            lifecycle(&setup, count).await
        }
        Some(other) => anyhow::bail!("unknown scenario {other:?}: use dispatch, lifecycle or all"),
    }
}
