//! `colonymesh process ps|get|assign|close|fail|cancel|rm` and the colony's assignment
//! switch, `process pause|resume|status`.

use super::env::ClientEnv;
use super::output::{state_name, Output};
use clap::Subcommand;
use proto::msgs::{
    AssignMsg, CloseFailedMsg, CloseSuccessfulMsg, ColonyNameMsg, GetProcessesMsg,
    PauseStatusReply, ProcessIdMsg, RemoveProcessMsg,
};
use proto::process::process_state as ps;
use proto::{Process, Request};

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
    /// Stop assigning the colony's processes to executors (colony owner).
    Pause,
    /// Assign the colony's processes again (colony owner).
    Resume,
    /// Whether assignments in the colony are paused.
    Status,
}

/// Table columns of processes.
pub(crate) const PROCESS_HEADERS: [&str; 5] = [
    "PROCESSID",
    "FUNCNAME",
    "STATE",
    "EXECUTORTYPE",
    "SUBMITTED",
];

pub(crate) fn process_rows(processes: &[Process]) -> Vec<Vec<String>> {
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

/// A process state from its word.
pub(crate) fn parse_state(text: &str) -> anyhow::Result<i32> {
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

pub(crate) async fn run_process(
    command: ProcessCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let client = env.client()?;
    // Pause and resume need only the colony owner's key.
    let key = || env.prvkey();
    let done = |id: &str, what: &str| out.done("processid", id, what);
    match command {
        ProcessCommand::Ps { state, count } => {
            let request = Request::GetProcesses(GetProcessesMsg {
                colonyname: env.colony(None)?,
                count,
                state: parse_state(&state)?,
                ..GetProcessesMsg::default()
            });
            let processes: Vec<Process> = client.call(&request, &key()?).await?;
            out.show(&processes, &PROCESS_HEADERS, process_rows(&processes));
        }
        ProcessCommand::Get { id } => {
            let process: Process = client
                .call(
                    &Request::GetProcess(ProcessIdMsg { processid: id }),
                    &key()?,
                )
                .await?;
            out.show(
                &process,
                &PROCESS_HEADERS,
                process_rows(std::slice::from_ref(&process)),
            );
        }
        ProcessCommand::Assign { timeout } => {
            let request = Request::Assign(AssignMsg {
                colonyname: env.colony(None)?,
                timeout,
                ..AssignMsg::default()
            });
            let process = client
                .assign(&request, &key()?, u64::try_from(timeout).unwrap_or(0))
                .await?;
            out.show(
                &process,
                &PROCESS_HEADERS,
                process_rows(std::slice::from_ref(&process)),
            );
        }
        ProcessCommand::Close { id, out: values } => {
            let values = values.into_iter().map(serde_json::Value::from).collect();
            let request = Request::CloseSuccessful(CloseSuccessfulMsg {
                processid: id.clone(),
                out: values,
            });
            let _: serde_json::Value = client.call(&request, &key()?).await?;
            done(&id, "closed");
        }
        ProcessCommand::Fail { id, errors } => {
            let request = Request::CloseFailed(CloseFailedMsg {
                processid: id.clone(),
                errors,
            });
            let _: serde_json::Value = client.call(&request, &key()?).await?;
            done(&id, "failed");
        }
        ProcessCommand::Cancel { id } => {
            let request = Request::CancelProcess(ProcessIdMsg {
                processid: id.clone(),
            });
            let _: serde_json::Value = client.call(&request, &key()?).await?;
            done(&id, "cancelled");
        }
        ProcessCommand::Rm { id } => {
            let request = Request::RemoveProcess(RemoveProcessMsg {
                processid: id.clone(),
                all: false,
            });
            let _: serde_json::Value = client.call(&request, &key()?).await?;
            done(&id, "removed");
        }
        ProcessCommand::Pause => switch(env, out, true).await?,
        ProcessCommand::Resume => switch(env, out, false).await?,
        ProcessCommand::Status => {
            let request = Request::GetPauseStatus(ColonyNameMsg {
                colonyname: env.colony(None)?,
            });
            let status: PauseStatusReply = client.call(&request, &key()?).await?;
            let word = if status.ispaused { "paused" } else { "active" };
            let rows = vec![vec![status.colonyname.clone(), word.to_string()]];
            out.show(&status, &["COLONY", "ASSIGNMENTS"], rows);
        }
    }
    Ok(())
}

/// `process pause|resume`: stops or restarts assignments in the colony (colony owner).
async fn switch(env: &ClientEnv, out: &Output, paused: bool) -> anyhow::Result<()> {
    let msg = ColonyNameMsg {
        colonyname: env.colony(None)?,
    };
    let colony = msg.colonyname.clone();
    let (request, what) = if paused {
        (Request::PauseAssignments(msg), "paused")
    } else {
        (Request::ResumeAssignments(msg), "resumed")
    };
    let client = env.client()?;
    let _: serde_json::Value = client.call(&request, &env.colony_prvkey()?).await?;
    out.done("colonyname", &colony, what);
    Ok(())
}
