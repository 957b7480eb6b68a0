//! `colonymesh nodes` (the fleet as the nodes report themselves by gossip, read with
//! `getclustermsg`) and `colonymesh fleet run` (one process per selected node, targeted at
//! that node's own executor of type `node` by executor name).

use super::env::ClientEnv;
use super::output::Output;
use super::wait::Backoff;
use crate::client::ClientError;
use crate::exec::NODE_EXECUTOR_TYPE;
use clap::Subcommand;
use proto::executor::executor_state;
use proto::mesh::{ClusterNode, ClusterReply};
use proto::msgs::{ColonyNameMsg, EmptyMsg, ProcessIdMsg, SubmitMsg};
use proto::process::process_state as ps;
use proto::{Conditions, Executor, FunctionSpec, Process, Request};
use serde::Serialize;
use serde_json::Value;
use std::io::Write as _;
use std::time::Duration;

/// Extra time the client waits beyond the processes' own `maxwaittime + maxexectime`.
const WAIT_SLACK: Duration = Duration::from_secs(10);

#[derive(Debug, Subcommand)]
pub(crate) enum FleetCommand {
    /// Run a node function (`inventory`, or `exec` where enabled) on every selected node
    /// and print one row per node.
    Run {
        /// The function: `inventory`, `exec`, or another function of the node executors.
        function: String,
        /// Arguments (for `exec`: the program and its arguments; options after the
        /// program are passed on, e.g. `fleet run exec uname -a`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
        /// Only these nodes (comma-separated names).
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<String>,
        /// Only nodes of this site.
        #[arg(long)]
        site: Option<String>,
        /// Seconds each node has to start and finish the function.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

/// `colonymesh nodes`: every member with its health, machine and executors.
pub(crate) async fn nodes(env: &ClientEnv, out: &Output) -> anyhow::Result<()> {
    let key = env.server_prvkey()?;
    let cluster: ClusterReply = env
        .client()?
        .call(&Request::GetCluster(EmptyMsg {}), &key)
        .await?;
    let rows = cluster.nodes.iter().map(node_row).collect();
    out.show(
        &cluster.nodes,
        &[
            "NAME",
            "SITE",
            "HEALTH",
            "ROLE",
            "VERSION",
            "APPLIED",
            "CPUS",
            "LOAD",
            "MEMORY",
            "DISK FREE",
            "UPTIME",
            "EXECUTORS",
        ],
        rows,
    );
    Ok(())
}

fn node_row(node: &ClusterNode) -> Vec<String> {
    let health = match (node.up, node.lastheardms) {
        (true, _) => "up".to_string(),
        (false, Some(ms)) => format!("down ({} s)", ms / 1000),
        (false, None) => "down (never heard)".to_string(),
    };
    let Some(s) = &node.status else {
        let mut row = vec![
            node.name.clone(),
            node.site.clone(),
            health,
            node.role.clone(),
        ];
        row.resize(12, "-".to_string());
        return row;
    };
    let gib = |bytes: u64| format!("{:.1}", bytes as f64 / (1u64 << 30) as f64);
    let executors = s
        .executors
        .iter()
        .map(|e| match e.state.as_str() {
            "ready" => format!("{}({})", e.name, e.running),
            state => format!("{}({}: {state})", e.name, e.running),
        })
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        node.name.clone(),
        node.site.clone(),
        health,
        s.role.clone(),
        s.version.clone(),
        s.applied_index.map_or("-".into(), |i| i.to_string()),
        s.cpus.to_string(),
        format!("{:.2}", s.load_milli[0] as f64 / 1000.0),
        format!(
            "{}/{} GiB",
            gib(s
                .memory_total_bytes
                .saturating_sub(s.memory_available_bytes)),
            gib(s.memory_total_bytes)
        ),
        format!("{} GiB", gib(s.disk_available_bytes)),
        duration(s.uptime_seconds),
        if executors.is_empty() {
            "-".into()
        } else {
            executors
        },
    ]
}

pub(super) fn duration(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// One node's result of a fleet run.
#[derive(Debug, Serialize)]
struct NodeResult {
    node: String,
    processid: String,
    /// `successful`, `failed` or `no answer`.
    state: String,
    output: Vec<Value>,
    errors: Vec<String>,
}

pub(crate) async fn run(
    command: FleetCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let FleetCommand::Run {
        function,
        args,
        nodes,
        site,
        timeout,
    } = command;
    anyhow::ensure!(timeout > 0, "--timeout must be positive");
    let colony = env.colony(None)?;
    let key = env.prvkey()?;
    let client = env.client()?;
    let request = Request::GetExecutors(ColonyNameMsg {
        colonyname: colony.clone(),
    });
    let executors: Vec<Executor> = client.call(&request, &key).await?;
    let targets = select(&executors, &nodes, site.as_deref())?;
    let seconds = i64::try_from(timeout).unwrap_or(i64::MAX);
    let mut pending = Vec::new();
    for target in &targets {
        let spec = FunctionSpec {
            funcname: function.clone(),
            args: args.iter().cloned().map(Value::String).collect(),
            maxwaittime: seconds,
            maxexectime: seconds,
            conditions: Conditions {
                colonyname: colony.clone(),
                executortype: NODE_EXECUTOR_TYPE.to_string(),
                executornames: vec![target.clone()],
                ..Conditions::default()
            },
            ..FunctionSpec::default()
        };
        let process: Process = client
            .call(&Request::Submit(SubmitMsg { spec }), &key)
            .await?;
        pending.push((target.clone(), process.processid));
    }
    let total = pending.len();
    let mut results: Vec<NodeResult> = Vec::new();
    let limit = Duration::from_secs(timeout.saturating_mul(2)) + WAIT_SLACK;
    progress(&function, 0, total);
    let poll = async {
        let mut backoff = Backoff::new();
        while !pending.is_empty() {
            let finished = results.len();
            let mut still = Vec::new();
            for (node, processid) in std::mem::take(&mut pending) {
                let get = Request::GetProcess(ProcessIdMsg {
                    processid: processid.clone(),
                });
                match client.call::<Process>(&get, &key).await {
                    Ok(process) if matches!(process.state, ps::SUCCESS | ps::FAILED) => {
                        results.push(result_of(node, process));
                    }
                    Ok(_) => still.push((node, processid)),
                    // An election or a lost connection: ask again after the pause (the
                    // overall limit still holds).
                    Err(ClientError::Api { status: 503, .. } | ClientError::Transport { .. }) => {
                        still.push((node, processid));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            pending = still;
            progress(&function, results.len(), total);
            if results.len() > finished {
                backoff.reset();
            }
            if !pending.is_empty() {
                backoff.pause().await;
            }
        }
        anyhow::Ok(())
    };
    // Out of time: whatever is still pending gets "no answer" below.
    if let Ok(polled) = tokio::time::timeout(limit, poll).await {
        polled?;
    }
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!();
    }
    for (node, processid) in pending {
        results.push(NodeResult {
            node,
            processid,
            state: "no answer".into(),
            output: Vec::new(),
            errors: vec![format!("no result within {} s", limit.as_secs())],
        });
    }
    results.sort_by(|a, b| a.node.cmp(&b.node));
    let failed = results.iter().filter(|r| r.state != "successful").count();
    let rows = results
        .iter()
        .map(|r| {
            let state = match r.state.as_str() {
                "successful" => "ok".to_string(),
                "failed" => "FAILED".to_string(),
                other => format!("FAILED ({other})"),
            };
            vec![r.node.clone(), state, summary(&function, r)]
        })
        .collect();
    out.show(&results, &["NODE", "STATE", "RESULT"], rows);
    anyhow::ensure!(failed == 0, "{failed} of {total} nodes failed");
    Ok(())
}

/// Shows `done/total` on a terminal's stderr (nothing when stderr is not a terminal).
fn progress(function: &str, done: usize, total: usize) {
    use std::io::IsTerminal as _;
    let mut stderr = std::io::stderr().lock();
    if !stderr.is_terminal() {
        return;
    }
    let _ = write!(stderr, "\rfleet run {function}: {done}/{total} nodes done");
    let _ = stderr.flush();
}

/// The node executors to run on: approved executors of type `node`, by name and site.
fn select(
    executors: &[Executor],
    names: &[String],
    site: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let candidates: Vec<&Executor> = executors
        .iter()
        .filter(|e| e.executortype == NODE_EXECUTOR_TYPE && e.state == executor_state::APPROVED)
        .collect();
    for name in names {
        anyhow::ensure!(
            candidates.iter().any(|e| &e.executorname == name),
            "node {name:?} has no approved node executor in this colony"
        );
    }
    let mut targets: Vec<String> = candidates
        .into_iter()
        .filter(|e| names.is_empty() || names.contains(&e.executorname))
        .filter(|e| site.is_none_or(|s| e.locationname == s))
        .map(|e| e.executorname.clone())
        .collect();
    targets.sort();
    anyhow::ensure!(!targets.is_empty(), "no node executors match the selection");
    Ok(targets)
}

fn result_of(node: String, process: Process) -> NodeResult {
    NodeResult {
        node,
        state: match process.state {
            ps::SUCCESS => "successful".into(),
            _ => "failed".into(),
        },
        processid: process.processid,
        output: process.output,
        errors: process.errors,
    }
}

/// One line about a node's result: for `inventory` the machine in short, else the output.
fn summary(function: &str, result: &NodeResult) -> String {
    if !result.errors.is_empty() {
        return result.errors.join("; ");
    }
    match (function, result.output.first()) {
        ("inventory", Some(Value::Object(i))) => {
            let text = |key: &str| {
                i.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string()
            };
            let number = |key: &str| i.get(key).and_then(Value::as_u64).unwrap_or(0);
            format!(
                "{} | {} | kernel {} | {} cpus | {:.1} GiB | {} disks | {} addresses | up {}",
                text("hostname"),
                text("os"),
                text("kernel"),
                number("cpus"),
                number("memory_total_bytes") as f64 / (1u64 << 30) as f64,
                i.get("disks").and_then(Value::as_array).map_or(0, Vec::len),
                i.get("addresses")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len),
                duration(number("uptime_seconds")),
            )
        }
        _ => result
            .output
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" | "),
    }
}
