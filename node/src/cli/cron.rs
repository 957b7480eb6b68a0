//! `colonymesh cron add|ls|get|run|rm`: workflows started on a schedule.

use super::env::ClientEnv;
use super::input;
use super::output::{time, Output};
use clap::Subcommand;
use proto::msgs::{AddCronMsg, ColonyCountMsg, CronIdMsg};
use proto::{Cron, Request, WorkflowSpec};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(crate) enum CronCommand {
    /// Add a cron that starts the workflow in --spec by a cron expression or an interval.
    #[command(group(clap::ArgGroup::new("schedule").required(true).args(["cron", "interval"])))]
    Add {
        #[arg(long)]
        name: String,
        /// A cron expression with seconds, e.g. "0 0 * * * *" (every hour).
        #[arg(long = "cron", value_name = "EXPR")]
        cron: Option<String>,
        /// Seconds between runs.
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(1..))]
        interval: Option<i64>,
        /// A WorkflowSpec JSON file.
        #[arg(long)]
        spec: PathBuf,
        /// Skip a run while the previous run's workflow is unfinished.
        #[arg(long)]
        wait_for_prev: bool,
    },
    /// List the colony's crons.
    Ls {
        #[arg(long, default_value_t = 100)]
        count: i64,
    },
    /// Show a cron.
    Get {
        #[arg(long)]
        id: String,
    },
    /// Start a cron's workflow now.
    Run {
        #[arg(long)]
        id: String,
    },
    /// Remove a cron.
    Rm {
        #[arg(long)]
        id: String,
    },
}

const HEADERS: [&str; 6] = [
    "CRONID",
    "NAME",
    "SCHEDULE",
    "NEXTRUN",
    "LASTRUN",
    "LASTWORKFLOW",
];

fn rows(crons: &[Cron]) -> Vec<Vec<String>> {
    crons
        .iter()
        .map(|c| {
            let schedule = if c.interval > 0 {
                format!("every {} s", c.interval)
            } else {
                c.cronexpression.clone()
            };
            vec![
                c.cronid.clone(),
                c.name.clone(),
                schedule,
                time(c.nextrun),
                time(c.lastrun),
                c.prevprocessgraphid.clone(),
            ]
        })
        .collect()
}

pub(crate) async fn run(command: CronCommand, env: &ClientEnv, out: &Output) -> anyhow::Result<()> {
    let client = env.client()?;
    let key = env.prvkey()?;
    let cron: Cron = match command {
        CronCommand::Add {
            name,
            cron,
            interval,
            spec,
            wait_for_prev,
        } => {
            // Checked here so that a bad file is named; the node keeps the text as given.
            let workflowspec = input::read_text(&spec, "workflow spec")?;
            input::parse_text::<WorkflowSpec>(&workflowspec, &spec, "workflow spec")?;
            let cron = Cron {
                colonyname: env.colony(None)?,
                name,
                cronexpression: cron.unwrap_or_default(),
                interval: interval.unwrap_or(-1),
                workflowspec,
                waitforprevprocessgraph: wait_for_prev,
                ..Cron::default()
            };
            client
                .call(&Request::AddCron(AddCronMsg { cron }), &key)
                .await?
        }
        CronCommand::Ls { count } => {
            let request = Request::GetCrons(ColonyCountMsg {
                colonyname: env.colony(None)?,
                count,
            });
            let crons: Vec<Cron> = client.call(&request, &key).await?;
            out.show(&crons, &HEADERS, rows(&crons));
            return Ok(());
        }
        CronCommand::Get { id } => client.call(&Request::GetCron(id_msg(id)), &key).await?,
        CronCommand::Run { id } => client.call(&Request::RunCron(id_msg(id)), &key).await?,
        CronCommand::Rm { id } => {
            let request = Request::RemoveCron(id_msg(id.clone()));
            let _: serde_json::Value = client.call(&request, &key).await?;
            out.done("cronid", &id, "removed");
            return Ok(());
        }
    };
    out.show(&cron, &HEADERS, rows(std::slice::from_ref(&cron)));
    Ok(())
}

fn id_msg(cronid: String) -> CronIdMsg {
    CronIdMsg { cronid, all: false }
}
