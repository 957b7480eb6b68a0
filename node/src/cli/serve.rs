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
    /// Mesh listen multiaddr (repeatable), e.g. /ip4/0.0.0.0/tcp/7001.
    #[arg(long)]
    listen: Vec<String>,
    /// Peer to join through, `<multiaddr>/p2p/<peer id>` (repeatable). None: bootstrap.
    #[arg(long)]
    join: Vec<String>,
    /// Node name shown in `mesh status`.
    #[arg(long)]
    name: Option<String>,
    /// Site label; voters are spread over sites.
    #[arg(long)]
    site: Option<String>,
    /// Mesh dir from `colonymesh init` (`mesh.json`; `mesh-root.key` on admission nodes).
    #[arg(long)]
    mesh_dir: Option<PathBuf>,
    /// Join token from `colonymesh token create`, for the first join.
    #[arg(long)]
    token: Option<String>,
    /// Discover peers on the local network with mDNS (LAN setups).
    #[arg(long)]
    mdns: bool,
    /// PEM certificate chain: the API serves HTTPS and WSS only (default:
    /// COLONIES_SERVER_HTTP_TLS_CERT or COLONIES_TLSCERT).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate (default: COLONIES_SERVER_HTTP_TLS_KEY or
    /// COLONIES_TLSKEY).
    #[arg(long)]
    tls_key: Option<PathBuf>,
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
    if !args.listen.is_empty() {
        config.mesh.listen = args.listen;
    }
    if !args.join.is_empty() {
        config.mesh.join = args.join;
    }
    if let Some(name) = args.name {
        config.mesh.name = name;
    }
    if let Some(site) = args.site {
        config.mesh.site = site;
    }
    if args.mesh_dir.is_some() {
        config.mesh.mesh_dir = args.mesh_dir;
    }
    if args.token.is_some() {
        config.mesh.token = args.token;
    }
    if args.mdns {
        config.mesh.mdns = true;
    }
    let from_env = |names: [&str; 2]| {
        names
            .into_iter()
            .find_map(|name| vars.get(name).filter(|v| !v.is_empty()))
            .map(PathBuf::from)
    };
    let cert = args
        .tls_cert
        .or_else(|| from_env(["COLONIES_SERVER_HTTP_TLS_CERT", "COLONIES_TLSCERT"]));
    let key = args
        .tls_key
        .or_else(|| from_env(["COLONIES_SERVER_HTTP_TLS_KEY", "COLONIES_TLSKEY"]));
    if cert.is_some() {
        config.api.tls_cert = cert;
    }
    if key.is_some() {
        config.api.tls_key = key;
    }
    let server_id = args
        .server_id
        .or_else(|| vars.get("COLONIES_SERVER_ID").cloned());
    if let Some(id) = server_id.filter(|id| !id.is_empty()) {
        config.server_id = Some(id);
    }
    Ok(config.validate()?)
}

/// `colonymesh peer-id`: the node's libp2p peer id (its key is created if missing), so that
/// scripts can write join addresses before starting nodes.
pub(crate) fn peer_id(data_dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let keypair = crate::net::load_or_create_keypair(&data_dir.join("node.key"))?;
    println!("{}", crate::net::peer_id_of(&keypair));
    Ok(())
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
