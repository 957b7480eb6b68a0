//! `colonymesh executor ...`: register (colony owner key), approve, reject, list, remove.

use super::env::ClientEnv;
use super::output::Output;
use clap::Subcommand;
use proto::executor::executor_state;
use proto::msgs::{ColonyNameMsg, ExecutorMsg, ExecutorNameMsg};
use proto::{Executor, Request};

#[derive(Debug, Subcommand)]
pub(crate) enum ExecutorCommand {
    /// Register an executor whose key has id --id (signed with COLONIES_COLONY_PRVKEY).
    Add {
        #[arg(long)]
        name: String,
        /// Executor type (default: COLONIES_EXECUTOR_TYPE).
        #[arg(long = "type")]
        executortype: Option<String>,
        /// Executor id (default: the id of COLONIES_PRVKEY).
        #[arg(long)]
        id: Option<String>,
        #[arg(long, default_value = "")]
        location: String,
    },
    /// Approve a registered executor (colony owner).
    Approve {
        #[arg(long)]
        name: String,
    },
    /// Reject a registered executor (colony owner).
    Reject {
        #[arg(long)]
        name: String,
    },
    /// List the colony's executors.
    Ls,
    /// Show one executor.
    Get {
        #[arg(long)]
        name: String,
    },
    /// Remove an executor; its running processes go back to the queue (colony owner).
    Rm {
        #[arg(long)]
        name: String,
    },
}

fn state_name(state: i32) -> &'static str {
    match state {
        executor_state::PENDING => "pending",
        executor_state::APPROVED => "approved",
        executor_state::REJECTED => "rejected",
        executor_state::UNREGISTERED => "unregistered",
        _ => "unknown",
    }
}

fn rows(executors: &[Executor]) -> Vec<Vec<String>> {
    executors
        .iter()
        .map(|e| {
            let state = state_name(e.state).to_string();
            vec![
                e.executorname.clone(),
                e.executortype.clone(),
                state,
                e.executorid.clone(),
            ]
        })
        .collect()
}

const HEADERS: [&str; 4] = ["NAME", "TYPE", "STATE", "EXECUTORID"];

pub(crate) async fn run(
    command: ExecutorCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let client = env.client()?;
    let colonyname = env.colony(None)?;
    let named = |name: String| ExecutorNameMsg {
        colonyname: colonyname.clone(),
        executorname: name,
    };
    let done = |name: &str, what: &str| {
        let value = serde_json::json!({ "executor": name, "done": what });
        out.show(
            &value,
            &["EXECUTOR", "DONE"],
            vec![vec![name.to_string(), what.to_string()]],
        );
    };
    match command {
        ExecutorCommand::Add {
            name,
            executortype,
            id,
            location,
        } => {
            let executorid = match id {
                Some(id) => id,
                None => env.prvkey()?.id(),
            };
            let executor = Executor {
                executorid,
                executortype: env.executor_type(executortype)?,
                executorname: name,
                colonyname: colonyname.clone(),
                locationname: location,
                ..Executor::default()
            };
            let request = Request::AddExecutor(ExecutorMsg { executor });
            let added: Executor = client.call(&request, &env.colony_prvkey()?).await?;
            out.show(&added, &HEADERS, rows(std::slice::from_ref(&added)));
        }
        ExecutorCommand::Approve { name } => {
            let request = Request::ApproveExecutor(named(name.clone()));
            let _: serde_json::Value = client.call(&request, &env.colony_prvkey()?).await?;
            done(&name, "approved");
        }
        ExecutorCommand::Reject { name } => {
            let request = Request::RejectExecutor(named(name.clone()));
            let _: serde_json::Value = client.call(&request, &env.colony_prvkey()?).await?;
            done(&name, "rejected");
        }
        ExecutorCommand::Rm { name } => {
            let request = Request::RemoveExecutor(named(name.clone()));
            let _: serde_json::Value = client.call(&request, &env.colony_prvkey()?).await?;
            done(&name, "removed");
        }
        ExecutorCommand::Ls => {
            let request = Request::GetExecutors(ColonyNameMsg {
                colonyname: colonyname.clone(),
            });
            let executors: Vec<Executor> = client.call(&request, &env.prvkey()?).await?;
            out.show(&executors, &HEADERS, rows(&executors));
        }
        ExecutorCommand::Get { name } => {
            let executor: Executor = client
                .call(&Request::GetExecutor(named(name)), &env.prvkey()?)
                .await?;
            out.show(&executor, &HEADERS, rows(std::slice::from_ref(&executor)));
        }
    }
    Ok(())
}
