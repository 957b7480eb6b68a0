//! Built-in executors: every node can run work itself. Each configured executor (shell,
//! Docker, and the node's own `node` executor for fleet queries) registers in its colony and
//! long-polls its own node through the ColonyOS API, like any external executor would.
//!
//! ```text
//!   start --> one Runner per executor --> `concurrency` workers, each:
//!     ensure registered --> assign (long-poll own node) --> Backend::run(Job)
//!       --> lines to the process log (LogSink) --> close successful / failed
//! ```
//!
//! The runners report their state and running count (`Executors::statuses`) for the node's
//! status gossip, which is how the mesh learns which executors a dead node took with it.

mod docker;
mod job;
mod node_functions;
mod output;
mod runner;
mod shell;

use crate::client::Client;
use crate::config::{ExecutorConfig, ExecutorKind, FleetConfig, NodeConfig};
use crate::shutdown::Signal;
use anyhow::Context as _;
use proto::mesh::ExecutorStatus;
use proto::PrivateKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tracing::Instrument as _;

pub(crate) use job::{Job, LogSink, Outcome};

/// The ColonyOS executor type of every node's own executor.
pub const NODE_EXECUTOR_TYPE: &str = "node";

/// How a runner runs a process.
pub(crate) enum Backend {
    Shell(shell::Shell),
    Docker(docker::Docker),
    Node(node_functions::NodeFunctions),
}

impl Backend {
    /// The function names registered for this executor.
    fn functions(&self) -> Vec<String> {
        match self {
            Backend::Shell(shell) => shell.functions(),
            Backend::Docker(docker) => docker.functions(),
            Backend::Node(node) => node.functions(),
        }
    }

    async fn run(&self, job: &Job) -> Outcome {
        match self {
            Backend::Shell(shell) => shell.run(job).await,
            Backend::Docker(docker) => docker.run(job).await,
            Backend::Node(node) => node.run(job).await,
        }
    }
}

/// One executor as configured on this node, resolved.
pub(crate) struct Spec {
    pub(crate) name: String,
    pub(crate) executortype: String,
    pub(crate) colony: String,
    pub(crate) site: String,
    pub(crate) colony_key: Option<PrivateKey>,
    pub(crate) concurrency: usize,
    pub(crate) max_exec: Duration,
}

/// The running built-in executors of a node.
#[derive(Clone, Default)]
pub struct Executors {
    statuses: Vec<Arc<runner::Status>>,
    /// Woken whenever an executor registers itself.
    registered: Arc<tokio::sync::Notify>,
}

impl Executors {
    /// Each executor's state and how many processes it runs, for status gossip.
    pub fn statuses(&self) -> Vec<ExecutorStatus> {
        self.statuses.iter().map(|s| s.snapshot()).collect()
    }

    /// The executors that register themselves (they hold their colony's key) and have not
    /// done so yet since the node started, with their state (why, when it failed). An executor
    /// registered by its colony's owner is not waited for: that is the owner's step.
    pub fn unregistered(&self) -> Vec<(String, String)> {
        self.statuses
            .iter()
            .filter(|s| !s.is_registered())
            .map(|s| {
                let status = s.snapshot();
                (status.name, status.state)
            })
            .collect()
    }

    /// Waits until every self-registering executor has registered (`unregistered` is empty),
    /// at most `limit`; on timeout, says which are still waiting and why.
    pub async fn wait_registered(&self, limit: Duration) -> anyhow::Result<()> {
        let all_registered = async {
            loop {
                let notified = self.registered.notified();
                tokio::pin!(notified);
                // Registered before the check wakes this wait, not only one after it.
                notified.as_mut().enable();
                if self.unregistered().is_empty() {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(limit, all_registered).await.is_err() {
            anyhow::bail!(
                "built-in executors not registered within {limit:?}: {}",
                describe(&self.unregistered())
            );
        }
        Ok(())
    }
}

/// `name (state), ...` of executors.
pub fn describe(executors: &[(String, String)]) -> String {
    let described: Vec<String> = executors
        .iter()
        .map(|(name, state)| format!("{name} ({state})"))
        .collect();
    described.join(", ")
}

/// Where a node's executors keep their keys, and where their processes run.
struct Dirs {
    keys: PathBuf,
    work: PathBuf,
}

/// Starts the node's built-in executors as tasks in `tasks`, talking to the node's API at
/// `api`. Fails at once on a configuration that cannot work (an unreadable colony key, a
/// Docker executor without a reachable Docker Engine, an unknown `run_as` user).
pub async fn start(
    config: &NodeConfig,
    node_name: &str,
    api: SocketAddr,
    tasks: &mut JoinSet<()>,
    stop: Signal,
) -> anyhow::Result<Executors> {
    let client = Client::local(api, config.api.tls_cert.is_some());
    let dirs = Dirs {
        keys: config.data_dir.join("executors"),
        work: std::env::temp_dir().join(format!("colonymesh-work-{node_name}")),
    };
    let site = &config.mesh.site;
    let mut executors = Executors::default();
    let mut runners = Vec::new();
    for executor in &config.executors {
        let spec = executor_spec(executor, node_name, site)?;
        let work = dirs.work.join(&spec.name);
        let backend = match executor.kind {
            ExecutorKind::Shell => Backend::Shell(shell::Shell::new(
                executor.functions.clone(),
                executor.run_as.as_deref(),
            )?),
            ExecutorKind::Docker => {
                let socket = executor.docker_socket.as_deref();
                let docker = docker::Docker::connect(socket, &spec.name)
                    .await
                    .with_context(|| format!("start executor {}", spec.name))?;
                Backend::Docker(docker)
            }
        };
        runners.push((spec, backend, work));
    }
    if let Some(spec) = fleet_spec(&config.fleet, node_name, site)? {
        let backend = Backend::Node(node_functions::NodeFunctions::new(
            config.fleet.exec,
            config.fleet.run_as.as_deref(),
        )?);
        let work = dirs.work.join(&spec.name);
        runners.push((spec, backend, work));
    }
    for (spec, backend, work) in runners {
        let key = executor_key(&dirs.keys, &spec.name)?;
        let registered = executors.registered.clone();
        let runner = runner::Runner::new(spec, key, client.clone(), backend, work, registered);
        executors.statuses.push(runner.status());
        tasks.spawn(runner.run(stop.clone()).in_current_span());
    }
    Ok(executors)
}

fn colony_key(
    colony_prvkey: &Option<String>,
    colony_prvkey_file: &Option<PathBuf>,
) -> anyhow::Result<Option<PrivateKey>> {
    let text = match (colony_prvkey, colony_prvkey_file) {
        (Some(key), _) => key.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .with_context(|| format!("read colony key file {}", file.display()))?,
        (None, None) => return Ok(None),
    };
    let key = PrivateKey::from_hex(text.trim()).context("parse the colony private key")?;
    Ok(Some(key))
}

fn executor_spec(config: &ExecutorConfig, node: &str, site: &str) -> anyhow::Result<Spec> {
    let name = config.name_on(node);
    Ok(Spec {
        colony_key: colony_key(&config.colony_prvkey, &config.colony_prvkey_file)
            .with_context(|| format!("executor {name}"))?,
        executortype: config.executor_type().to_string(),
        colony: config.colony.clone(),
        site: site.to_string(),
        concurrency: config.concurrency,
        max_exec: Duration::from_secs(config.max_exec_seconds),
        name,
    })
}

fn fleet_spec(config: &FleetConfig, node: &str, site: &str) -> anyhow::Result<Option<Spec>> {
    if config.colony.is_empty() {
        return Ok(None);
    }
    Ok(Some(Spec {
        name: node.to_string(),
        executortype: NODE_EXECUTOR_TYPE.to_string(),
        colony: config.colony.clone(),
        site: site.to_string(),
        colony_key: colony_key(&config.colony_prvkey, &config.colony_prvkey_file)
            .context("fleet executor")?,
        concurrency: config.concurrency,
        max_exec: Duration::from_secs(config.max_exec_seconds),
    }))
}

/// The executor's own key, made on first start and kept in `dir` (so a restarted node's
/// executor keeps its identity).
fn executor_key(dir: &Path, name: &str) -> anyhow::Result<PrivateKey> {
    let path = dir.join(format!("{name}.key"));
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return PrivateKey::from_hex(text.trim())
                .with_context(|| format!("parse executor key {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let key = PrivateKey::from_entropy(crate::clock::key_entropy());
    crate::host::write_private(&path, key.to_hex().as_bytes())?;
    Ok(key)
}
