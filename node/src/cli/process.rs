//! `colonymesh function submit` and `colonymesh process ps|get|assign|close|fail|cancel|rm`.

use super::env::ClientEnv;
use super::output::{state_name, Output};
use anyhow::Context as _;
use clap::Subcommand;
use proto::msgs::{
    AssignMsg, CloseFailedMsg, CloseSuccessfulMsg, GetProcessesMsg, ProcessIdMsg, RemoveProcessMsg,
    SubmitMsg,
};
use proto::process::process_state as ps;
use proto::{FunctionSpec, Process, Request};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub(crate) enum FunctionCommand {
    /// Submit a function spec, from a JSON file (--spec) or flags.
    Submit {
        /// A FunctionSpec JSON file, as the colonies CLI reads.
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Function name (when not using --spec).
        #[arg(long)]
        func: Option<String>,
        /// Arguments (repeatable).
        #[arg(long = "arg")]
        args: Vec<String>,
        /// Executor type (default: COLONIES_EXECUTOR_TYPE).
        #[arg(long = "type")]
        executortype: Option<String>,
        #[arg(long, default_value_t = 0)]
        priority: i64,
        #[arg(long, default_value_t = -1)]
        maxwaittime: i64,
        #[arg(long, default_value_t = -1)]
        maxexectime: i64,
        #[arg(long, default_value_t = 3)]
        maxretries: i64,
        /// Wait until the process is closed, up to this many seconds.
        #[arg(long)]
        wait: Option<Option<u64>>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProcessCommand {
    /// List processes of the colony in a state.
    Ps {
        /// waiting, running, successful, failed or cancelled.
        #[arg(long, default_value = "waiting")]
        state: String,
        #[arg(long, default_value_t = 20)]
        count: i64,
    },
    /// Show one process.
    Get {
        #[arg(long)]
        id: String,
    },
    /// Assign a process to the executor with COLONIES_PRVKEY (long-polls --timeout seconds).
    Assign {
        #[arg(long, default_value_t = 10)]
        timeout: i64,
    },
    /// Close a running process as successful.
    Close {
        #[arg(long)]
        id: String,
        /// Output values (repeatable).
        #[arg(long = "out")]
        out: Vec<String>,
    },
    /// Close a running process as failed.
    Fail {
        #[arg(long)]
        id: String,
        /// Error messages (repeatable).
        #[arg(long = "error")]
        errors: Vec<String>,
    },
    /// Cancel a waiting or running process.
    Cancel {
        #[arg(long)]
        id: String,
    },
    /// Remove a process that is not running.
    Rm {
        #[arg(long)]
        id: String,
    },
}

const HEADERS: [&str; 5] = [
    "PROCESSID",
    "FUNCNAME",
    "STATE",
    "EXECUTORTYPE",
    "SUBMITTED",
];

fn rows(processes: &[Process]) -> Vec<Vec<String>> {
    processes
        .iter()
        .map(|p| {
            vec![
                p.processid.clone(),
                p.spec.funcname.clone(),
                state_name(p.state).to_string(),
                p.spec.conditions.executortype.clone(),
                p.submissiontime.to_rfc3339(),
            ]
        })
        .collect()
}

fn parse_state(text: &str) -> anyhow::Result<i32> {
    Ok(match text {
        "waiting" => ps::WAITING,
        "running" => ps::RUNNING,
        "successful" | "success" => ps::SUCCESS,
        "failed" => ps::FAILED,
        "cancelled" => ps::CANCELLED,
        other => anyhow::bail!(
            "unknown state {other:?}: use waiting, running, successful, failed or cancelled"
        ),
    })
}

#[allow(clippy::too_many_arguments)]
fn build_spec(
    env: &ClientEnv,
    spec: Option<PathBuf>,
    func: Option<String>,
    args: Vec<String>,
    executortype: Option<String>,
    limits: [i64; 4],
) -> anyhow::Result<FunctionSpec> {
    let mut spec = match spec {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("read spec file {}", path.display()))?;
            serde_json::from_str::<FunctionSpec>(&text)
                .with_context(|| format!("parse spec file {}", path.display()))?
        }
        None => {
            let [priority, maxwaittime, maxexectime, maxretries] = limits;
            let mut spec = FunctionSpec {
                funcname: func.context("give --spec FILE or --func NAME")?,
                args: args.into_iter().map(serde_json::Value::from).collect(),
                priority,
                maxwaittime,
                maxexectime,
                maxretries,
                ..FunctionSpec::default()
            };
            spec.conditions.executortype = env.executor_type(executortype)?;
            spec
        }
    };
    if spec.conditions.colonyname.is_empty() {
        spec.conditions.colonyname = env.colony(None)?;
    }
    // The colonies CLI reads 0 as "no limit" from JSON files.
    for limit in [&mut spec.maxwaittime, &mut spec.maxexectime] {
        if *limit == 0 {
            *limit = -1;
        }
    }
    Ok(spec)
}

pub(crate) async fn run_function(
    command: FunctionCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let FunctionCommand::Submit {
        spec,
        func,
        args,
        executortype,
        priority,
        maxwaittime,
        maxexectime,
        maxretries,
        wait,
    } = command;
    let spec = build_spec(
        env,
        spec,
        func,
        args,
        executortype,
        [priority, maxwaittime, maxexectime, maxretries],
    )?;
    let client = env.client()?;
    let key = env.prvkey()?;
    let mut process: Process = client
        .call(&Request::Submit(SubmitMsg { spec }), &key)
        .await?;
    if let Some(wait) = wait {
        let limit = Duration::from_secs(wait.unwrap_or(3600));
        process = wait_closed(&client, &key, &process.processid, limit).await?;
    }
    out.show(&process, &HEADERS, rows(std::slice::from_ref(&process)));
    if process.state == ps::FAILED {
        anyhow::bail!(
            "process {} failed: {}",
            process.processid,
            process.errors.join("; ")
        );
    }
    Ok(())
}

/// Polls the process until it reaches a terminal state or `limit` passes.
async fn wait_closed(
    client: &crate::client::Client,
    key: &proto::PrivateKey,
    id: &str,
    limit: Duration,
) -> anyhow::Result<Process> {
    let poll = async {
        let mut delay = Duration::from_millis(10);
        loop {
            let request = Request::GetProcess(ProcessIdMsg {
                processid: id.to_string(),
            });
            let process: Process = client.call(&request, key).await?;
            if ps::is_terminal(process.state) {
                return anyhow::Ok(process);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    };
    tokio::time::timeout(limit, poll)
        .await
        .with_context(|| format!("process {id} was not closed within {} s", limit.as_secs()))?
}

pub(crate) async fn run_process(
    command: ProcessCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let client = env.client()?;
    let key = env.prvkey()?;
    let done = |id: &str, what: &str| {
        let value = serde_json::json!({ "processid": id, "done": what });
        out.show(
            &value,
            &["PROCESSID", "DONE"],
            vec![vec![id.to_string(), what.to_string()]],
        );
    };
    match command {
        ProcessCommand::Ps { state, count } => {
            let request = Request::GetProcesses(GetProcessesMsg {
                colonyname: env.colony(None)?,
                count,
                state: parse_state(&state)?,
                ..GetProcessesMsg::default()
            });
            let processes: Vec<Process> = client.call(&request, &key).await?;
            out.show(&processes, &HEADERS, rows(&processes));
        }
        ProcessCommand::Get { id } => {
            let process: Process = client
                .call(&Request::GetProcess(ProcessIdMsg { processid: id }), &key)
                .await?;
            out.show(&process, &HEADERS, rows(std::slice::from_ref(&process)));
        }
        ProcessCommand::Assign { timeout } => {
            let request = Request::Assign(AssignMsg {
                colonyname: env.colony(None)?,
                timeout,
                ..AssignMsg::default()
            });
            let process = client
                .assign(&request, &key, u64::try_from(timeout).unwrap_or(0))
                .await?;
            out.show(&process, &HEADERS, rows(std::slice::from_ref(&process)));
        }
        ProcessCommand::Close { id, out: values } => {
            let values = values.into_iter().map(serde_json::Value::from).collect();
            let request = Request::CloseSuccessful(CloseSuccessfulMsg {
                processid: id.clone(),
                out: values,
            });
            let _: serde_json::Value = client.call(&request, &key).await?;
            done(&id, "closed");
        }
        ProcessCommand::Fail { id, errors } => {
            let request = Request::CloseFailed(CloseFailedMsg {
                processid: id.clone(),
                errors,
            });
            let _: serde_json::Value = client.call(&request, &key).await?;
            done(&id, "failed");
        }
        ProcessCommand::Cancel { id } => {
            let request = Request::CancelProcess(ProcessIdMsg {
                processid: id.clone(),
            });
            let _: serde_json::Value = client.call(&request, &key).await?;
            done(&id, "cancelled");
        }
        ProcessCommand::Rm { id } => {
            let request = Request::RemoveProcess(RemoveProcessMsg {
                processid: id.clone(),
                all: false,
            });
            let _: serde_json::Value = client.call(&request, &key).await?;
            done(&id, "removed");
        }
    }
    Ok(())
}
