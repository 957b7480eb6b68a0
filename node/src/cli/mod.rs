//! The `colonymesh` command line (clap). Node commands (`dev`, `node`) start a node in this
//! process; every other command is a client that talks to a node only through its HTTP API,
//! reading the same `COLONIES_*` environment variables as the ColonyOS `colonies` CLI.

mod backup;
mod ban;
mod blueprint;
mod colony;
mod cron;
mod dashboard;
mod dev;
mod env;
mod executor;
mod fleet;
mod fs;
mod function;
mod generator;
mod info;
mod init;
mod input;
mod key;
mod location;
mod log;
mod mesh;
mod output;
mod process;
mod serve;
mod wait;
mod workflow;

use clap::{Parser, Subcommand};
use std::collections::HashMap;

/// Colonymesh: ColonyOS without a central server.
#[derive(Debug, Parser)]
#[command(name = "colonymesh", version, about)]
pub struct Cli {
    /// Print JSON instead of tables (client commands).
    #[arg(long, global = true)]
    json: bool,
    /// The colony (client commands; default: COLONIES_COLONY_NAME).
    #[arg(long, global = true)]
    colony: Option<String>,
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
        /// Accept any TLS certificate (a node with a self-signed one).
        #[arg(long)]
        insecure: bool,
    },
    /// Print this node's peer id (creating its key if missing).
    PeerId {
        #[arg(long)]
        data_dir: std::path::PathBuf,
    },
    /// The mesh: members, roles, leader, replication.
    #[command(subcommand)]
    Mesh(mesh::MeshCommand),
    /// The nodes of the mesh as they report themselves: health, machine, executors.
    Nodes,
    /// One screen about this node and its mesh (server owner key for the mesh view).
    Info,
    /// The address of the node's web dashboard, with its key (server owner key).
    Dashboard,
    /// Take an online, consistent backup of a node's state to a file (server owner).
    Backup(backup::BackupArgs),
    /// Seed an empty data dir from a backup; the node then starts a new mesh with that state.
    Restore(backup::RestoreArgs),
    /// Sources the node bans after repeated failed authentications: list, lift.
    #[command(subcommand)]
    Ban(ban::BanCommand),
    /// Fleet queries: run a node function on every (selected) node.
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
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
    /// Functions: submit specs; the registry of functions executors offer.
    #[command(subcommand)]
    Function(function::FunctionCommand),
    /// Processes: list, inspect, assign, close; pause and resume assignments.
    #[command(subcommand)]
    Process(process::ProcessCommand),
    /// Workflows (process graphs): submit, inspect, list, cancel, remove.
    #[command(subcommand)]
    Workflow(workflow::WorkflowCommand),
    /// Log lines of processes and executors: read, follow, search, add.
    #[command(subcommand)]
    Log(log::LogCommand),
    /// Crons: workflows started on a schedule.
    #[command(subcommand)]
    Cron(cron::CronCommand),
    /// Generators: workflows started once enough arguments are packed.
    #[command(subcommand)]
    Generator(generator::GeneratorCommand),
    /// Locations of a colony.
    #[command(subcommand)]
    Location(location::LocationCommand),
    /// ColonyFS metadata: labels, files, snapshots (no S3 transfer).
    #[command(subcommand)]
    Fs(fs::FsCommand),
    /// Blueprint definitions and blueprints.
    #[command(subcommand)]
    Blueprint(blueprint::BlueprintCommand),
}

/// Runs the parsed command. `vars` is the process environment, read once by `main`.
pub async fn run(cli: Cli, vars: HashMap<String, String>) -> anyhow::Result<()> {
    let out = output::Output { json: cli.json };
    let client_env = env::ClientEnv::new(&vars).with_colony(cli.colony);
    let env = &client_env;
    match cli.command {
        Command::Dev(args) => dev::run(args, &vars).await,
        Command::Node(args) => serve::run(args, &vars).await,
        Command::Init(args) => init::init(args, &out),
        Command::Probe { url, insecure } => probe(&url, insecure).await,
        Command::Token(command) => init::token(command),
        Command::PeerId { data_dir } => serve::peer_id(&data_dir),
        Command::Mesh(command) => mesh::run(command, env, &out).await,
        Command::Nodes => fleet::nodes(env, &out).await,
        Command::Info => info::run(env, &out).await,
        Command::Dashboard => dashboard::run(env, &out).await,
        Command::Ban(command) => ban::run(command, env, &out).await,
        Command::Backup(args) => backup::backup(args, env, &out).await,
        Command::Restore(args) => backup::restore(args, &out).await,
        Command::Fleet(command) => fleet::run(command, env, &out).await,
        Command::Key(command) => key::run(command, &vars, &out),
        Command::Colony(command) => colony::run_colony(command, env, &out).await,
        Command::User(command) => colony::run_user(command, env, &out).await,
        Command::Executor(command) => executor::run(command, env, &out).await,
        Command::Function(command) => function::run(command, env, &out).await,
        Command::Process(command) => process::run_process(command, env, &out).await,
        Command::Workflow(command) => workflow::run(command, env, &out).await,
        Command::Log(command) => log::run(command, env, &out).await,
        Command::Cron(command) => cron::run(command, env, &out).await,
        Command::Generator(command) => generator::run(command, env, &out).await,
        Command::Location(command) => location::run(command, env, &out).await,
        Command::Fs(command) => fs::run(command, env, &out).await,
        Command::Blueprint(command) => blueprint::run(command, env, &out).await,
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
async fn probe(url: &str, insecure: bool) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .danger_accept_invalid_certs(insecure)
        .build()?;
    let response = client.get(url).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::{CommandFactory, Parser};

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn alternatives_are_required_and_exclusive() {
        let parse = |args: &str| Cli::try_parse_from(args.split(' ')).map(|_| ());
        let spec = "--name n --spec w.json";
        let missing = parse(&format!("colonymesh cron add {spec}")).unwrap_err();
        assert!(missing.to_string().contains("--cron"), "{missing}");
        assert!(missing.to_string().contains("--interval"), "{missing}");
        assert!(parse(&format!("colonymesh cron add {spec} --cron x --interval 5")).is_err());
        assert!(parse(&format!("colonymesh cron add {spec} --interval 0")).is_err());
        assert!(parse(&format!("colonymesh cron add {spec} --interval 5")).is_ok());
        assert!(parse("colonymesh generator get").is_err());
        assert!(parse("colonymesh fs rm --label l").is_err());
        assert!(parse("colonymesh fs rm --id i --label l --name n").is_err());
        assert!(parse("colonymesh fs rm --label l --name n").is_ok());
        assert!(parse("colonymesh log get --processid p --executor e").is_err());
        assert!(parse("colonymesh location add --name x --long -73.9 --lat 40.7").is_ok());
        assert!(parse("colonymesh workflow submit --spec w.json --wait").is_ok());
        assert!(parse("colonymesh --colony c process status --json").is_ok());
    }
}
