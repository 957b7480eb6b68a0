//! `colonymesh workflow submit|get|ps|cancel|rm|rmall`: workflows (process graphs).

use super::env::ClientEnv;
use super::output::{state_name, time, Output};
use super::process::{parse_state, process_rows, PROCESS_HEADERS};
use super::{input, wait};
use clap::Subcommand;
use proto::msgs::{
    GetProcessesMsg, ProcessGraphIdMsg, ProcessGraphsMsg, RemoveProcessGraphMsg, SubmitWorkflowMsg,
};
use proto::process::process_state as ps;
use proto::{Process, ProcessGraph, Request, WorkflowSpec};
use serde::Serialize;
use std::path::PathBuf;

/// Most processes of one workflow `workflow get` lists (the node's listing limit).
const WORKFLOW_PROCESSES_SHOWN: i64 = 100;

#[derive(Debug, Subcommand)]
pub(crate) enum WorkflowCommand {
    /// Submit a workflow from a WorkflowSpec JSON file (colony defaults to the env's).
    Submit {
        #[arg(long)]
        spec: PathBuf,
        /// Wait until the workflow has finished, up to this many seconds (default 3600).
        #[arg(long, value_name = "SECONDS")]
        wait: Option<Option<u64>>,
    },
    /// Show a workflow and its processes.
    Get {
        #[arg(long)]
        id: String,
    },
    /// List the colony's workflows in a state.
    Ps {
        /// waiting, running, successful, failed or cancelled.
        #[arg(long, default_value = "waiting")]
        state: String,
        #[arg(long, default_value_t = 20)]
        count: i64,
    },
    /// Cancel a workflow and its unfinished processes.
    Cancel {
        #[arg(long)]
        id: String,
    },
    /// Remove a workflow and its processes.
    Rm {
        #[arg(long)]
        id: String,
    },
    /// Remove every workflow of the colony, or those in --state (colony owner).
    Rmall {
        #[arg(long)]
        state: Option<String>,
    },
}

const HEADERS: [&str; 5] = [
    "PROCESSGRAPHID",
    "STATE",
    "PROCESSES",
    "INITIATOR",
    "SUBMITTED",
];

fn rows(graphs: &[ProcessGraph]) -> Vec<Vec<String>> {
    graphs
        .iter()
        .map(|g| {
            vec![
                g.processgraphid.clone(),
                state_name(g.state).to_string(),
                g.processids.len().to_string(),
                g.initiatorname.clone(),
                time(g.submissiontime),
            ]
        })
        .collect()
}

/// `workflow get --json`: the graph's fields and its processes.
#[derive(Debug, Serialize)]
struct WorkflowView {
    #[serde(flatten)]
    graph: ProcessGraph,
    processes: Vec<Process>,
}

pub(crate) async fn run(
    command: WorkflowCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let client = env.client()?;
    let key = || env.prvkey();
    match command {
        WorkflowCommand::Submit { spec, wait } => {
            let mut workflow: WorkflowSpec = input::read_json(&spec, "workflow spec")?;
            if workflow.colonyname.is_empty() {
                workflow.colonyname = env.colony(None)?;
            }
            let request = Request::SubmitWorkflow(SubmitWorkflowMsg { spec: workflow });
            let key = key()?;
            let mut graph: ProcessGraph = client.call(&request, &key).await?;
            if let Some(limit) = wait::limit(wait) {
                let id = graph.processgraphid.clone();
                let what = format!("workflow {id} did not finish");
                graph = wait::until(limit, &what, || async {
                    let request = Request::GetProcessGraph(ProcessGraphIdMsg {
                        processgraphid: id.clone(),
                    });
                    let graph: ProcessGraph = client.call(&request, &key).await?;
                    Ok(ps::is_terminal(graph.state).then_some(graph))
                })
                .await?;
            }
            out.show(&graph, &HEADERS, rows(std::slice::from_ref(&graph)));
            if graph.state == ps::FAILED {
                anyhow::bail!("workflow {} failed", graph.processgraphid);
            }
        }
        WorkflowCommand::Get { id } => {
            let key = key()?;
            let request = Request::GetProcessGraph(ProcessGraphIdMsg {
                processgraphid: id.clone(),
            });
            let graph: ProcessGraph = client.call(&request, &key).await?;
            let request = Request::GetProcesses(GetProcessesMsg {
                colonyname: graph.colonyname.clone(),
                count: WORKFLOW_PROCESSES_SHOWN,
                state: ps::NOTSET,
                processgraphid: id,
                ..GetProcessesMsg::default()
            });
            let processes: Vec<Process> = client.call(&request, &key).await?;
            let sections = [
                (&HEADERS[..], rows(std::slice::from_ref(&graph))),
                (&PROCESS_HEADERS[..], process_rows(&processes)),
            ];
            out.show_sections(&WorkflowView { graph, processes }, &sections);
        }
        WorkflowCommand::Ps { state, count } => {
            let request = Request::GetProcessGraphs(ProcessGraphsMsg {
                colonyname: env.colony(None)?,
                count,
                state: parse_state(&state)?,
            });
            let graphs: Vec<ProcessGraph> = client.call(&request, &key()?).await?;
            out.show(&graphs, &HEADERS, rows(&graphs));
        }
        WorkflowCommand::Cancel { id } => {
            let request = Request::CancelProcessGraph(ProcessGraphIdMsg {
                processgraphid: id.clone(),
            });
            let _: serde_json::Value = client.call(&request, &key()?).await?;
            out.done("processgraphid", &id, "cancelled");
        }
        WorkflowCommand::Rm { id } => {
            let request = Request::RemoveProcessGraph(RemoveProcessGraphMsg {
                processgraphid: id.clone(),
                all: false,
            });
            let _: serde_json::Value = client.call(&request, &key()?).await?;
            out.done("processgraphid", &id, "removed");
        }
        WorkflowCommand::Rmall { state } => {
            let colonyname = env.colony(None)?;
            let state = match state {
                Some(state) => parse_state(&state)?,
                None => ps::NOTSET,
            };
            let request = Request::RemoveAllProcessGraphs(ProcessGraphsMsg {
                colonyname: colonyname.clone(),
                count: 0,
                state,
            });
            let _: serde_json::Value = client.call(&request, &env.colony_prvkey()?).await?;
            out.done("colonyname", &colonyname, "workflows removed");
        }
    }
    Ok(())
}
