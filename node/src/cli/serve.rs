//! `colonymesh node`: run a node from a TOML config file and/or flags until SIGTERM/Ctrl-C.

use crate::clock::SystemClock;
use crate::config::NodeConfig;
use anyhow::Context as _;
use clap::Args;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// TOML config file (`version = 1`); flags override its values.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long)]
    api_host: Option<IpAddr>,
    /// API port; 0 picks a free port.
    #[arg(long)]
    api_port: Option<u16>,
    /// ColonyOS server owner id (default: COLONIES_SERVER_ID).
    #[arg(long)]
    server_id: Option<String>,
}

/// The config from file and flags, validated.
fn config(args: NodeArgs, vars: &HashMap<String, String>) -> anyhow::Result<NodeConfig> {
    let mut config = match (&args.config, &args.data_dir) {
        (Some(path), _) => NodeConfig::from_file(path)?,
        (None, Some(data_dir)) => NodeConfig::new(data_dir),
        (None, None) => anyhow::bail!("give --config FILE or --data-dir DIR"),
    };
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    if let Some(host) = args.api_host {
        config.api.host = host;
    }
    if let Some(port) = args.api_port {
        config.api.port = port;
    }
    let server_id = args
        .server_id
        .or_else(|| vars.get("COLONIES_SERVER_ID").cloned());
    if let Some(id) = server_id.filter(|id| !id.is_empty()) {
        config.server_id = Some(id);
    }
    Ok(config.validate()?)
}

pub(crate) async fn run(args: NodeArgs, vars: &HashMap<String, String>) -> anyhow::Result<()> {
    let config = config(args, vars)?;
    let node = crate::node::start(config, Arc::new(SystemClock))
        .await
        .context("start node")?;
    if node.server_id.is_none() {
        tracing::warn!("no server owner id recorded: set COLONIES_SERVER_ID or --server-id");
    }
    super::terminated().await;
    tracing::info!("stopping");
    node.stop().await;
    Ok(())
}
