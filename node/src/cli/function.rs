//! `colonymesh function submit|register|ls|rm`: submitting function specs, and the registry
//! of functions executors offer (with their run statistics).

use super::env::ClientEnv;
use super::output::Output;
use super::process::{process_rows, PROCESS_HEADERS};
use super::{input, wait};
use anyhow::Context as _;
use clap::Subcommand;
use proto::msgs::{AddFunctionMsg, FunctionIdMsg, GetFunctionsMsg, ProcessIdMsg, SubmitMsg};
use proto::process::process_state as ps;
use proto::{Function, FunctionSpec, Process, Request};
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
        /// Wait until the process is closed, up to this many seconds (default 3600).
        #[arg(long, value_name = "SECONDS")]
        wait: Option<Option<u64>>,
    },
    /// Register a function the executor with COLONIES_PRVKEY offers.
    Register {
        /// Function name.
        #[arg(long)]
        name: String,
        /// Executor name (default: COLONIES_EXECUTOR_NAME); must be the caller.
        #[arg(long)]
        executor: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the colony's functions (of one executor with --executor), with run statistics.
    Ls {
        #[arg(long)]
        executor: Option<String>,
    },
    /// Remove a function (the executor that registered it).
    Rm {
        #[arg(long)]
        id: String,
    },
}

const HEADERS: [&str; 7] = [
    "FUNCTIONID",
    "FUNCNAME",
    "EXECUTOR",
    "EXECUTORTYPE",
    "CALLS",
    "AVGWAIT(S)",
    "AVGEXEC(S)",
];

fn rows(functions: &[Function]) -> Vec<Vec<String>> {
    functions
        .iter()
        .map(|f| {
            vec![
                f.functionid.clone(),
                f.funcname.clone(),
                f.executorname.clone(),
                f.executortype.clone(),
                f.counter.to_string(),
                format!("{:.3}", f.avgwaittime),
                format!("{:.3}", f.avgexectime),
            ]
        })
        .collect()
}

pub(crate) async fn run(
    command: FunctionCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let client = env.client()?;
    let key = env.prvkey()?;
    match command {
        FunctionCommand::Submit {
            spec,
            func,
            args,
            executortype,
            priority,
            maxwaittime,
            maxexectime,
            maxretries,
            wait,
        } => {
            let from_file = spec.is_some();
            let mut spec = match spec {
                Some(path) => input::read_json::<FunctionSpec>(&path, "function spec")?,
                None => FunctionSpec {
                    funcname: func.context("give --spec FILE or --func NAME")?,
                    args: args.into_iter().map(serde_json::Value::from).collect(),
                    priority,
                    maxwaittime,
                    maxexectime,
                    maxretries,
                    ..FunctionSpec::default()
                },
            };
            // A spec file keeps its own conditions unless --type is given.
            if executortype.is_some() || !from_file {
                spec.conditions.executortype = env.executor_type(executortype)?;
            }
            submit(env, out, spec, wait).await?;
        }
        FunctionCommand::Register {
            name,
            executor,
            description,
        } => {
            let fun = Function {
                executorname: env.executor_name(executor)?,
                colonyname: env.colony(None)?,
                funcname: name,
                description,
                ..Function::default()
            };
            let request = Request::AddFunction(AddFunctionMsg { fun });
            let function: Function = client.call(&request, &key).await?;
            out.show(&function, &HEADERS, rows(std::slice::from_ref(&function)));
        }
        FunctionCommand::Ls { executor } => {
            let request = Request::GetFunctions(GetFunctionsMsg {
                executorname: executor.unwrap_or_default(),
                colonyname: env.colony(None)?,
            });
            let functions: Vec<Function> = client.call(&request, &key).await?;
            out.show(&functions, &HEADERS, rows(&functions));
        }
        FunctionCommand::Rm { id } => {
            let request = Request::RemoveFunction(FunctionIdMsg {
                functionid: id.clone(),
            });
            let _: serde_json::Value = client.call(&request, &key).await?;
            out.done("functionid", &id, "removed");
        }
    }
    Ok(())
}

/// Submits `spec` (colony and limits defaulted) and, with `wait`, waits for
/// the process to close; a failed process is an error.
async fn submit(
    env: &ClientEnv,
    out: &Output,
    mut spec: FunctionSpec,
    wait: Option<Option<u64>>,
) -> anyhow::Result<()> {
    if spec.conditions.colonyname.is_empty() {
        spec.conditions.colonyname = env.colony(None)?;
    }
    // The colonies CLI reads 0 as "no limit" from JSON files.
    for limit in [&mut spec.maxwaittime, &mut spec.maxexectime] {
        if *limit == 0 {
            *limit = -1;
        }
    }
    let client = env.client()?;
    let key = env.prvkey()?;
    let mut process: Process = client
        .call(&Request::Submit(SubmitMsg { spec }), &key)
        .await?;
    if let Some(limit) = wait::limit(wait) {
        process = wait_closed(&client, &key, &process.processid, limit).await?;
    }
    out.show(
        &process,
        &PROCESS_HEADERS,
        process_rows(std::slice::from_ref(&process)),
    );
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
    let what = format!("process {id} was not closed");
    wait::until(limit, &what, || async {
        let request = Request::GetProcess(ProcessIdMsg {
            processid: id.to_string(),
        });
        let process: Process = client.call(&request, key).await?;
        Ok(ps::is_terminal(process.state).then_some(process))
    })
    .await
}
