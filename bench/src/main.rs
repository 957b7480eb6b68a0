//! `colonymesh-bench`: the load generator behind `scripts/bench`. Scenarios against
//! Colonymesh (signed requests like a real client, configured by `COLONIES_*` exports) and
//! against etcd; each prints a line and appends a JSON record to `BENCH_RESULTS`.
//!
//! - `suite`: dispatch (1 client), lifecycle (1 and N clients), a 10-process workflow,
//!   durable writes (1 and N clients), then backlog sizes (assign latency and RSS with many
//!   waiting processes).
//! - `dispatch`, `lifecycle`, `workflow`, `writes`, `backlog`: one scenario.
//! - `failover`: lifecycle loop retrying failures; kill -> next assignment (with
//!   `--kill-file`, written by the script with the Unix ns of its `kill -9`).
//! - `shell`: real `/bin/true` processes through the nodes' built-in shell executors.
//! - `etcd`: durable puts against etcd members.

mod colony;
mod etcd;
mod failover;
mod shell;
mod stats;
mod workflow;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::collections::HashMap;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
    /// Concurrent clients of the many-client scenarios.
    #[arg(long, global = true, default_value_t = 32)]
    clients: usize,
    /// Length of each timed scenario, in seconds.
    #[arg(long, global = true, default_value_t = 10)]
    seconds: u64,
}

#[derive(Subcommand)]
enum Scenario {
    Suite {
        /// Dispatch samples.
        #[arg(long, default_value_t = 500)]
        count: usize,
        /// Backlog sizes, comma-separated.
        #[arg(long, default_value = "1000,100000")]
        backlog: String,
    },
    Dispatch {
        #[arg(long, default_value_t = 500)]
        count: usize,
    },
    Lifecycle,
    /// A 10-process workflow (root, 8 parallel, join) from submit to done, `count` times.
    Workflow {
        #[arg(long, default_value_t = 50)]
        count: usize,
    },
    Writes,
    /// `count` real processes (`/bin/true`) through the built-in shell executors.
    Shell {
        #[arg(long, default_value_t = 2000)]
        count: usize,
    },
    Backlog {
        #[arg(long, default_value = "1000,100000")]
        sizes: String,
    },
    Failover {
        /// File holding the Unix ns of the kill (written by the script).
        #[arg(long)]
        kill_file: Option<String>,
    },
    Etcd {
        /// Member client URLs, comma-separated.
        #[arg(long)]
        endpoints: String,
    },
}

fn sizes(text: &str) -> anyhow::Result<Vec<usize>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .with_context(|| format!("backlog size {s:?}"))
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let vars: HashMap<String, String> = std::env::vars().collect();
    let (clients, seconds) = (args.clients, args.seconds);
    if let Scenario::Etcd { endpoints } = &args.scenario {
        let endpoints: Vec<String> = endpoints.split(',').map(String::from).collect();
        etcd::writes(&endpoints, 1, seconds).await?;
        return etcd::writes(&endpoints, clients, seconds).await;
    }
    let target = colony::Target::from_env(&vars)?;
    match args.scenario {
        Scenario::Suite { count, backlog } => {
            target.dispatch(count).await?;
            target.lifecycle(1, seconds).await?;
            target.lifecycle(clients, seconds).await?;
            workflow::run(&target, 50).await?;
            let mut written = target.writes(1, seconds, None, "writes").await?;
            written += target.writes(clients, seconds, None, "writes").await?;
            target.backlog(&sizes(&backlog)?, clients, written).await
        }
        Scenario::Dispatch { count } => target.dispatch(count).await,
        Scenario::Lifecycle => target.lifecycle(clients, seconds).await,
        Scenario::Workflow { count } => workflow::run(&target, count).await,
        Scenario::Writes => target
            .writes(clients, seconds, None, "writes")
            .await
            .map(|_| ()),
        Scenario::Shell { count } => shell::run(&target, count, clients).await,
        Scenario::Backlog { sizes: text } => target.backlog(&sizes(&text)?, clients, 0).await,
        Scenario::Failover { kill_file } => {
            failover::run(&target, seconds, kill_file.as_deref()).await
        }
        Scenario::Etcd { .. } => unreachable!("handled above"),
    }
}
