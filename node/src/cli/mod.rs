//! The `colonymesh` command line (clap). Node commands (`dev`, `node`) start a node in this
//! process; every other command is a client that talks to a node only through its HTTP API,
//! reading the same `COLONIES_*` environment variables as the ColonyOS `colonies` CLI.

mod colony;
mod dev;
mod env;
mod executor;
mod init;
mod key;
mod mesh;
mod output;
mod process;
mod serve;

use clap::{Parser, Subcommand};
use std::collections::HashMap;

/// Colonymesh: ColonyOS without a central server.
#[derive(Debug, Parser)]
#[command(name = "colonymesh", version, about)]
pub struct Cli {
    /// Print JSON instead of tables (client commands).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a one-node mesh with a colony, keys and an approved executor, printing
    /// `export COLONIES_...` lines for clients.
    Dev(dev::DevArgs),
    /// Run a node from a TOML config file and/or flags.
    Node(serve::NodeArgs),
    /// Create a mesh: root key, mesh id and server owner.
    Init(init::InitArgs),
    /// Join tokens.
    #[command(subcommand)]
    Token(init::TokenCommand),
    /// Exit 0 when GET URL answers 2xx within 5 s (container health checks).
    Probe {
        #[arg(long, default_value = "http://127.0.0.1:50080/health")]
        url: String,
    },
    /// Print this node's peer id (creating its key if missing).
    PeerId {
        #[arg(long)]
        data_dir: std::path::PathBuf,
    },
    /// The mesh: members, roles, leader, replication.
    #[command(subcommand)]
    Mesh(mesh::MeshCommand),
    /// Private keys and ids.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Colonies (server owner).
    #[command(subcommand)]
    Colony(colony::ColonyCommand),
    /// Users of a colony (colony owner).
    #[command(subcommand)]
    User(colony::UserCommand),
    /// Executors of a colony.
    #[command(subcommand)]
    Executor(executor::ExecutorCommand),
    /// Submit function specs.
    #[command(subcommand)]
    Function(process::FunctionCommand),
    /// Processes: list, inspect, assign, close.
    #[command(subcommand)]
    Process(process::ProcessCommand),
}

/// Runs the parsed command. `vars` is the process environment, read once by `main`.
pub async fn run(cli: Cli, vars: HashMap<String, String>) -> anyhow::Result<()> {
    let out = output::Output { json: cli.json };
    match cli.command {
        Command::Dev(args) => dev::run(args, &vars).await,
        Command::Node(args) => serve::run(args, &vars).await,
        Command::Init(args) => init::init(args, &out),
        Command::Probe { url } => probe(&url).await,
        Command::Token(command) => init::token(command),
        Command::PeerId { data_dir } => serve::peer_id(&data_dir),
        Command::Mesh(command) => mesh::run(command, &env::ClientEnv::new(&vars), &out).await,
        Command::Key(command) => key::run(command, &vars, &out),
        Command::Colony(command) => {
            colony::run_colony(command, &env::ClientEnv::new(&vars), &out).await
        }
        Command::User(command) => {
            colony::run_user(command, &env::ClientEnv::new(&vars), &out).await
        }
        Command::Executor(command) => {
            executor::run(command, &env::ClientEnv::new(&vars), &out).await
        }
        Command::Function(command) => {
            process::run_function(command, &env::ClientEnv::new(&vars), &out).await
        }
        Command::Process(command) => {
            process::run_process(command, &env::ClientEnv::new(&vars), &out).await
        }
    }
}

/// Waits for Ctrl-C or SIGTERM. Cancel-safe.
pub(crate) async fn terminated() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::error!("failed to watch SIGTERM: {error}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// `colonymesh probe`: a health check that needs nothing but this binary.
async fn probe(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()?;
    let response = client.get(url).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    Ok(())
}
