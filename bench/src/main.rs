//! `colonymesh-bench`: the load generator behind `scripts/bench`. Scenarios against
//! Colonymesh (signed requests like a real client, configured by `COLONIES_*` exports) and
//! against etcd; each prints a line and appends a JSON record to `BENCH_RESULTS`.
//!
//! - `suite`: dispatch (1 client), lifecycle (1 and N clients), a 10-process workflow,
//!   durable writes (1, N and M clients), then backlog sizes (assign latency and RSS with many
//!   waiting processes).
//! - `dispatch`, `lifecycle`, `workflow`, `writes`, `backlog`: one scenario.
//! - `failover`: lifecycle loop retrying failures; kill -> next assignment (with
//!   `--kill-file`, written by the script with the Unix ns of its `kill -9`).
//! - `shell`: real `/bin/true` processes through the nodes' built-in shell executors.
//! - `etcd`: durable puts against etcd members (1, N and M clients), through the JSON gateway
//!   and through gRPC.

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
    /// The second many-client count of durable writes (Colonymesh and etcd); 0: none.
    #[arg(long, global = true, env = "BENCH_CLIENTS_MAX", default_value_t = 64)]
    clients_max: usize,
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
        /// Which API: `json` (the gateway), `grpc` or `both`.
        #[arg(long, default_value = "both")]
        api: String,
        /// HTTP/2 connections the gRPC clients share; 0: one per client.
        #[arg(long, default_value_t = etcd::GRPC_LAYOUT.connections)]
        grpc_connections: usize,
        /// Where the gRPC connections go: `leader` or `members` (spread over them).
        #[arg(long, default_value = etcd::GRPC_LAYOUT.to())]
        grpc_to: String,
    },
}

/// 1, `clients` and `clients_max` clients, each once, in that order (0 left out).
fn write_counts(clients: usize, clients_max: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = Vec::new();
    for n in [1, clients, clients_max] {
        if n > 0 && !counts.contains(&n) {
            counts.push(n);
        }
    }
    counts
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
    let counts = write_counts(clients, args.clients_max);
    if let Scenario::Etcd {
        endpoints,
        api,
        grpc_connections,
        grpc_to,
    } = &args.scenario
    {
        let layout = etcd::Layout {
            connections: *grpc_connections,
            to_leader: match grpc_to.as_str() {
                "leader" => true,
                "members" => false,
                other => anyhow::bail!("--grpc-to {other:?}: leader or members"),
            },
        };
        let endpoints: Vec<String> = endpoints.split(',').map(String::from).collect();
        let (json, grpc) = match api.as_str() {
            "json" => (true, false),
            "grpc" => (false, true),
            "both" => (true, true),
            other => anyhow::bail!("--api {other:?}: json, grpc or both"),
        };
        for &n in &counts {
            if json {
                etcd::writes_json(&endpoints, n, seconds).await?;
            }
            if grpc {
                etcd::writes_grpc(&endpoints, n, seconds, layout).await?;
            }
        }
        return Ok(());
    }
    let target = colony::Target::from_env(&vars)?;
    match args.scenario {
        Scenario::Suite { count, backlog } => {
            target.dispatch(count).await?;
            target.lifecycle(1, seconds).await?;
            target.lifecycle(clients, seconds).await?;
            workflow::run(&target, 50).await?;
            let mut written = 0;
            for &n in &counts {
                written += target.writes(n, seconds, None, "writes").await?;
            }
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
