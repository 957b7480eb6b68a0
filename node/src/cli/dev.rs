//! `colonymesh dev`: a one-node mesh ready for ColonyOS clients in one command.
//!
//! Keys and names come from the `COLONIES_*` environment when set (so a ColonyOS user's keys
//! carry over), else from `dev-identity.json` in the data dir, else are made anew and saved
//! there. The node then ensures the colony exists and the executor is registered and approved,
//! through its own API, waits for its own built-in executors to register in that colony, and
//! prints `export` lines on stdout before serving.

use crate::client::{Client, ClientError};
use crate::clock::{key_entropy, SystemClock};
use crate::config::NodeConfig;
use anyhow::Context as _;
use clap::Args;
use proto::msgs::{ColonyMsg, ColonyNameMsg, EmptyMsg, ExecutorMsg, ExecutorNameMsg};
use proto::{Colony, Executor, PrivateKey, Request};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Where the node keeps its state and the dev identity (default: ~/.colonymesh/dev).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// API port; 0 picks a free one.
    #[arg(long, default_value_t = 50080)]
    api_port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    api_host: IpAddr,
    /// Serve HTTPS and WSS with a self-signed certificate (made once, kept in the data dir's
    /// `tls/`); the printed settings make clients trust it.
    #[arg(long)]
    tls: bool,
}

/// The dev certificate and key in `data_dir`, made on first use for the names a local
/// client may use (and `host` when it is a specific address).
fn dev_certificate(data_dir: &Path, host: IpAddr) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = data_dir.join("tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !host.is_unspecified() && !host.is_loopback() {
        names.push(host.to_string());
    }
    let (cert_pem, key_pem) = crate::tls::self_signed(&names)?;
    crate::host::write_private(&key, key_pem.as_bytes())?;
    std::fs::write(&cert, cert_pem).with_context(|| format!("write {}", cert.display()))?;
    Ok((cert, key))
}

/// The keys and names of a dev setup, saved in the data dir.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Identity {
    server_id: String,
    /// Unknown when only `COLONIES_SERVER_ID` was given.
    server_prvkey: Option<String>,
    colony_name: String,
    colony_prvkey: String,
    executor_name: String,
    executor_type: String,
    executor_prvkey: String,
}

const IDENTITY_FILE: &str = "dev-identity.json";
/// How long the node's built-in executors may take to register before `dev` gives up.
const EXECUTORS_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn new_key() -> String {
    PrivateKey::from_entropy(key_entropy()).to_hex()
}

impl Identity {
    fn fresh() -> Identity {
        let server = PrivateKey::from_entropy(key_entropy());
        Identity {
            server_id: server.id(),
            server_prvkey: Some(server.to_hex()),
            colony_name: "dev".to_string(),
            colony_prvkey: new_key(),
            executor_name: "dev-executor".to_string(),
            executor_type: "cli".to_string(),
            executor_prvkey: new_key(),
        }
    }

    /// Saved identity (or a fresh one), with every `COLONIES_*` variable that is set applied.
    fn resolve(path: &Path, vars: &HashMap<String, String>) -> anyhow::Result<Identity> {
        let mut identity = match std::fs::read_to_string(path) {
            Ok(text) => {
                serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Identity::fresh(),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        let var = |name: &str| vars.get(name).filter(|v| !v.is_empty()).cloned();
        if let Some(id) = var("COLONIES_SERVER_ID") {
            identity.server_id = id.to_ascii_lowercase();
            identity.server_prvkey = None;
        }
        if let Some(key) = var("COLONIES_SERVER_PRVKEY") {
            let id = PrivateKey::from_hex(&key)
                .context("parse COLONIES_SERVER_PRVKEY")?
                .id();
            if var("COLONIES_SERVER_ID").is_some_and(|given| !given.eq_ignore_ascii_case(&id)) {
                anyhow::bail!("COLONIES_SERVER_ID does not match the id of COLONIES_SERVER_PRVKEY");
            }
            identity.server_id = id;
            identity.server_prvkey = Some(key);
        }
        let fields = [
            ("COLONIES_COLONY_NAME", &mut identity.colony_name),
            ("COLONIES_COLONY_PRVKEY", &mut identity.colony_prvkey),
            ("COLONIES_EXECUTOR_NAME", &mut identity.executor_name),
            ("COLONIES_EXECUTOR_TYPE", &mut identity.executor_type),
            ("COLONIES_PRVKEY", &mut identity.executor_prvkey),
        ];
        for (name, field) in fields {
            if let Some(value) = var(name) {
                *field = value;
            }
        }
        for (name, key) in [
            ("colony", &identity.colony_prvkey),
            ("executor", &identity.executor_prvkey),
        ] {
            PrivateKey::from_hex(key).with_context(|| format!("parse the {name} private key"))?;
        }
        Ok(identity)
    }

    fn save(&self, path: &Path) -> anyhow::Result<()> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let text = serde_json::to_string_pretty(self).expect("identity always serializes");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("write {}", path.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("write {}", path.display()))
    }
}

fn default_data_dir(vars: &HashMap<String, String>) -> PathBuf {
    match vars.get("HOME") {
        Some(home) => Path::new(home).join(".colonymesh").join("dev"),
        None => PathBuf::from(".colonymesh-dev"),
    }
}

pub(crate) async fn run(args: DevArgs, vars: &HashMap<String, String>) -> anyhow::Result<()> {
    let data_dir = args.data_dir.unwrap_or_else(|| default_data_dir(vars));
    std::fs::create_dir_all(&data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let identity_path = data_dir.join(IDENTITY_FILE);
    let identity = Identity::resolve(&identity_path, vars)?;
    identity.save(&identity_path)?;
    let mut config = NodeConfig::new(&data_dir);
    config.api.host = args.api_host;
    config.api.port = args.api_port;
    config.server_id = Some(identity.server_id.clone());
    let certificate = match args.tls {
        true => {
            let (cert, key) = dev_certificate(&data_dir, args.api_host)?;
            config.api.tls_cert = Some(cert.clone());
            config.api.tls_key = Some(key);
            Some(cert)
        }
        false => None,
    };
    // Dev is the LAN mode: find other nodes nearby by mDNS.
    config.mesh.mdns = true;
    // The node's own executor (fleet queries: `colonymesh fleet run inventory`).
    config.fleet.colony = identity.colony_name.clone();
    config.fleet.colony_prvkey = Some(identity.colony_prvkey.clone());
    let node = crate::node::start(config.validate()?, Arc::new(SystemClock))
        .await
        .context("start node")?;
    let host = crate::client::local_host(node.api_addr);
    let client = Client::local(node.api_addr, certificate.is_some());
    if let Err(error) = provision(&client, &identity).await {
        node.stop().await;
        return Err(error);
    }
    // The settings are printed once the node's own executor (fleet queries) is registered in
    // the colony just made, so a client started right after them finds it.
    if let Err(error) = node.executors.wait_registered(EXECUTORS_WAIT).await {
        node.stop().await;
        return Err(error);
    }
    print_exports(
        &identity,
        &host,
        node.api_addr.port(),
        certificate.as_deref(),
    )?;
    tracing::info!(data_dir = %data_dir.display(), "dev node serving; stop with Ctrl-C");
    super::terminated().await;
    node.stop().await;
    Ok(())
}

/// Makes sure the colony exists with the expected owner and the executor is approved.
async fn provision(client: &Client, identity: &Identity) -> anyhow::Result<()> {
    let colony_key = PrivateKey::from_hex(&identity.colony_prvkey)?;
    let executor_key = PrivateKey::from_hex(&identity.executor_prvkey)?;
    if let Some(server_prvkey) = &identity.server_prvkey {
        let server_key = PrivateKey::from_hex(server_prvkey)?;
        let colonies: Vec<Colony> = client
            .call(&Request::GetColonies(EmptyMsg {}), &server_key)
            .await?;
        match colonies.iter().find(|c| c.name == identity.colony_name) {
            Some(colony) if colony.colonyid != colony_key.id() => anyhow::bail!(
                "colony {:?} already exists with another owner; \
                 use its key in COLONIES_COLONY_PRVKEY",
                identity.colony_name
            ),
            Some(_) => {}
            None => {
                let name = identity.colony_name.clone();
                let colony = Colony {
                    colonyid: colony_key.id(),
                    name,
                };
                let add = Request::AddColony(ColonyMsg { colony });
                let _: Colony = client.call(&add, &server_key).await?;
            }
        }
    }
    let executor = Executor {
        executorid: executor_key.id(),
        executortype: identity.executor_type.clone(),
        executorname: identity.executor_name.clone(),
        colonyname: identity.colony_name.clone(),
        ..Executor::default()
    };
    match client
        .call::<Executor>(&Request::AddExecutor(ExecutorMsg { executor }), &colony_key)
        .await
    {
        Ok(_) | Err(ClientError::Api { status: 409, .. }) => {}
        Err(error) => return Err(error).context("register the dev executor"),
    }
    let approve = Request::ApproveExecutor(ExecutorNameMsg {
        colonyname: identity.colony_name.clone(),
        executorname: identity.executor_name.clone(),
    });
    let _: serde_json::Value = client
        .call(&approve, &colony_key)
        .await
        .context("approve the dev executor")?;
    // The executor must be a member with *this* key (a same-named executor may hold another).
    let check = Request::GetColony(ColonyNameMsg {
        colonyname: identity.colony_name.clone(),
    });
    let _: Colony = client.call(&check, &executor_key).await.with_context(|| {
        format!(
            "executor {:?} is registered with another key",
            identity.executor_name
        )
    })?;
    Ok(())
}

/// `export` lines for clients; with `certificate` (TLS), the CA file that trusts it.
fn print_exports(
    identity: &Identity,
    host: &str,
    port: u16,
    certificate: Option<&Path>,
) -> anyhow::Result<()> {
    let port = port.to_string();
    let tls = if certificate.is_some() {
        "true"
    } else {
        "false"
    };
    let ca = certificate.map(|c| c.display().to_string());
    let mut lines = vec![
        ("COLONIES_SERVER_HOST", host),
        ("COLONIES_SERVER_PORT", &port),
        ("COLONIES_SERVER_HTTP_PORT", &port),
        ("COLONIES_TLS", tls),
        ("COLONIES_SERVER_TLS", tls),
    ];
    if let Some(ca) = &ca {
        lines.push(("COLONIES_TLS_CA", ca));
        eprintln!(
            "TLS: the certificate is self-signed; colonymesh trusts it through COLONIES_TLS_CA. \
             For pycolonies also export REQUESTS_CA_BUNDLE={ca} and SSL_CERT_FILE={ca}; for \
             the colonies (Go) CLI, SSL_CERT_FILE={ca} (both replace the system's roots). \
             The colonyos crate trusts only public CAs."
        );
    }
    lines.push(("COLONIES_SERVER_ID", &identity.server_id));
    if let Some(key) = &identity.server_prvkey {
        lines.push(("COLONIES_SERVER_PRVKEY", key));
    }
    lines.extend([
        ("COLONIES_COLONY_NAME", identity.colony_name.as_str()),
        ("COLONIES_COLONY_PRVKEY", &identity.colony_prvkey),
        ("COLONIES_EXECUTOR_NAME", &identity.executor_name),
        ("COLONIES_EXECUTOR_TYPE", &identity.executor_type),
        ("COLONIES_PRVKEY", &identity.executor_prvkey),
    ]);
    let mut stdout = std::io::stdout().lock();
    for (name, value) in lines {
        writeln!(stdout, "export {name}={value}")?;
    }
    stdout.flush()?;
    Ok(())
}
