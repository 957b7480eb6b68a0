//! Test harness for Colonymesh integration tests.
//!
//! How to write a test: start a real in-process node with `TestNode::start()` (RocksDB in a
//! temp dir, API on port 0, a server owner, colony `dev` and one approved executor), talk to
//! it through `node::client::Client` like any user, and wait for conditions with `wait_for`
//! (bounded polling) instead of sleeping. `colonymesh_binary()` builds and finds the real
//! binary for tests that need a separate process (kill -9). `cluster::Cluster` starts a mesh.

pub mod cluster;

use node::client::{Client, ClientError};
use node::clock::{Clock, ManualClock, SystemClock};
use node::config::NodeConfig;
use node::node::NodeHandle;
use proto::msgs::{ColonyMsg, ExecutorMsg, ExecutorNameMsg};
use proto::{Colony, Executor, FunctionSpec, PrivateKey, Request};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::AsyncBufReadExt as _;

/// A deterministic, distinct private key per call within a test binary.
pub fn test_key() -> PrivateKey {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&NEXT.fetch_add(1, Ordering::SeqCst).to_le_bytes());
    PrivateKey::from_entropy(seed)
}

/// Options of a test node.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Drive time by hand (for maxexectime / maxwaittime) instead of the system clock.
    pub manual_clock: bool,
    /// Override `api.body_bytes_max`.
    pub body_bytes_max: Option<usize>,
    /// Serve the API over TLS with a self-signed certificate (`TestNode::ca_file`), which
    /// the node's client trusts.
    pub tls: bool,
}

/// A running node with a provisioned colony `dev` and executor `worker` of type `cli`.
pub struct TestNode {
    pub handle: NodeHandle,
    pub dir: tempfile::TempDir,
    pub client: Client,
    pub server: PrivateKey,
    pub colony: PrivateKey,
    pub executor: PrivateKey,
    /// Present with `Options::manual_clock`.
    pub clock: Option<ManualClock>,
    /// With `Options::tls`: the node's self-signed certificate, to trust as a CA.
    pub ca_file: Option<std::path::PathBuf>,
}

impl TestNode {
    pub async fn start() -> TestNode {
        TestNode::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> TestNode {
        TestNode::start_configured(options, |_, _| {}).await
    }

    /// Like `start_with`, with `adjust` applied to the config; it also gets the colony
    /// owner's key (for built-in executors that register themselves).
    pub async fn start_configured(
        options: Options,
        adjust: impl FnOnce(&mut NodeConfig, &PrivateKey),
    ) -> TestNode {
        let dir = tempfile::tempdir().expect("create temp dir");
        let server = test_key();
        let colony = test_key();
        let mut config = test_config(dir.path(), &server);
        adjust(&mut config, &colony);
        if let Some(limit) = options.body_bytes_max {
            config.api.body_bytes_max = limit;
        }
        let ca_file = options.tls.then(|| {
            let names = ["localhost".to_string(), "127.0.0.1".to_string()];
            let (cert, key) = node::tls::self_signed(&names).expect("make a certificate");
            let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_path, cert).expect("write the certificate");
            std::fs::write(&key_path, key).expect("write the key");
            config.api.tls_cert = Some(cert_path.clone());
            config.api.tls_key = Some(key_path);
            cert_path
        });
        let manual = options
            .manual_clock
            .then(|| ManualClock::new(1_700_000_000_000_000_000));
        let clock: Arc<dyn Clock> = match &manual {
            Some(clock) => Arc::new(clock.clone()),
            None => Arc::new(SystemClock),
        };
        let config = config.validate().expect("valid test config");
        let handle = node::node::start(config, clock).await.expect("start node");
        let client = match &ca_file {
            None => client_of(&handle),
            Some(ca) => {
                let trust = node::tls::ClientTls {
                    ca_file: Some(ca.clone()),
                    skip_verify: false,
                };
                Client::with_tls("localhost", handle.api_addr.port(), Some(&trust))
                    .expect("a client trusting the node's certificate")
            }
        };
        let node = TestNode {
            handle,
            dir,
            client,
            server,
            colony,
            executor: test_key(),
            clock: manual,
            ca_file,
        };
        node.provision().await;
        node
    }

    /// Adds colony `dev` and the approved executor `worker` of type `cli`.
    async fn provision(&self) {
        add_colony(&self.client, &self.server, &self.colony).await;
        self.register_executor(&self.executor, "worker", "cli")
            .await;
    }

    /// Registers and approves an executor in `dev` (signed by the colony owner).
    pub async fn register_executor(&self, key: &PrivateKey, name: &str, executortype: &str) {
        register_executor(&self.client, &self.colony, key, name, executortype).await;
    }

    /// A spec for `funcname` on executors of `executortype` in `dev`, without limits.
    pub fn spec(funcname: &str, executortype: &str) -> FunctionSpec {
        let mut spec = FunctionSpec {
            funcname: funcname.into(),
            maxwaittime: -1,
            maxexectime: -1,
            maxretries: -1,
            ..FunctionSpec::default()
        };
        spec.conditions.colonyname = "dev".into();
        spec.conditions.executortype = executortype.into();
        spec
    }

    pub async fn stop(self) {
        self.handle.stop().await;
    }
}

/// Adds colony `dev` owned by `colony`, signed by the server owner.
pub async fn add_colony(client: &Client, server: &PrivateKey, colony: &PrivateKey) {
    let colony = Colony {
        colonyid: colony.id(),
        name: "dev".into(),
    };
    let add = Request::AddColony(ColonyMsg { colony });
    provision(client, &add, server, "add colony").await;
}

/// Sends a provisioning write, retrying (for at most 60 s) while the mesh answers 503 (an
/// election on a loaded test machine); a 409 after such an answer means the earlier attempt
/// landed.
async fn provision(client: &Client, request: &Request, key: &PrivateKey, what: &str) {
    let mut retried = false;
    let attempts = async {
        loop {
            match client.call::<serde_json::Value>(request, key).await {
                Ok(_) => return,
                Err(ClientError::Api { status: 409, .. }) if retried => return,
                Err(ClientError::Api { status: 503, .. }) => {
                    retried = true;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("{what}: {error:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), attempts)
        .await
        .unwrap_or_else(|_| panic!("{what}: no quorum within 60 s"));
}

/// Registers and approves executor `name` with `key` in `dev`, signed by the colony owner.
pub async fn register_executor(
    client: &Client,
    colony: &PrivateKey,
    key: &PrivateKey,
    name: &str,
    executortype: &str,
) {
    let executor = Executor {
        executorid: key.id(),
        executorname: name.into(),
        executortype: executortype.into(),
        colonyname: "dev".into(),
        ..Executor::default()
    };
    let add = Request::AddExecutor(ExecutorMsg { executor });
    provision(client, &add, colony, "add executor").await;
    let approve = Request::ApproveExecutor(ExecutorNameMsg {
        colonyname: "dev".into(),
        executorname: name.into(),
    });
    provision(client, &approve, colony, "approve executor").await;
}

/// A node config for tests: temp data dir, API port 0, loopback mesh, fast timers.
pub fn test_config(data_dir: &std::path::Path, server: &PrivateKey) -> NodeConfig {
    let mut config = NodeConfig::new(data_dir);
    config.api.port = 0;
    config.server_id = Some(server.id());
    config.raft.tick_ms = 20;
    config.mesh.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    config.mesh.autopilot_ms = 100;
    config.mesh.stabilization_ms = 200;
    config.mesh.voter_dead_ms = 2_000;
    config.mesh.node_dead_ms = 5_000;
    config.mesh.join_timeout_ms = 20_000;
    config
}

/// A client for a node's API.
pub fn client_of(handle: &NodeHandle) -> Client {
    Client::new("127.0.0.1", handle.api_addr.port(), false)
}

/// Polls `check` every 10 ms until it returns `Some`, failing the test after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let poll = async {
        loop {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    match tokio::time::timeout(timeout, poll).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// A `colonymesh` command without the developer's own `COLONIES_*` variables (a test sets
/// the ones it means), killed when dropped.
pub fn colonymesh_command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(colonymesh_binary());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("COLONIES_")) {
        command.env_remove(name);
    }
    command.kill_on_drop(true);
    command
}

/// Runs `colonymesh ARGS` with `env` (see `colonymesh_command`) to its end, within 60 s.
pub async fn run_colonymesh(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut command = colonymesh_command();
    command
        .args(args)
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())));
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .unwrap_or_else(|_| panic!("colonymesh {args:?} did not finish within 60 s"))
        .expect("run colonymesh")
}

/// The `colonymesh` binary, built once per test run with the cargo that runs the tests.
pub fn colonymesh_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "--quiet", "-p", "node", "--bin", "colonymesh"])
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build of colonymesh failed");
            // Test binaries live in target/<profile>/deps; the binary one level up.
            let exe = std::env::current_exe().expect("current exe");
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target dir");
            let binary = profile_dir.join("colonymesh");
            assert!(binary.exists(), "{} missing after build", binary.display());
            binary
        })
        .clone()
}

/// Starts the real `colonymesh dev` binary on `data_dir` (API port 0, killed on drop), with
/// `env` as its only `COLONIES_*` variables, and returns it with the `export` lines it printed.
pub async fn start_dev(
    data_dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (
    tokio::process::Child,
    std::collections::HashMap<String, String>,
) {
    start_dev_logging(data_dir, env, std::process::Stdio::null()).await
}

/// `start_dev` with the node's log (stderr) going to `log`.
pub async fn start_dev_logging(
    data_dir: &std::path::Path,
    env: &[(&str, &str)],
    log: std::process::Stdio,
) -> (
    tokio::process::Child,
    std::collections::HashMap<String, String>,
) {
    let mut command = colonymesh_command();
    command
        .args(["dev", "--api-port", "0", "--data-dir"])
        .arg(data_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .envs(env.iter().copied());
    let mut child = command.spawn().expect("spawn colonymesh dev");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut exports = std::collections::HashMap::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some((name, value)) =
                line.strip_prefix("export ").and_then(|l| l.split_once('='))
            {
                exports.insert(name.to_string(), value.to_string());
                if name == "COLONIES_PRVKEY" {
                    return;
                }
            }
        }
        panic!("colonymesh dev exited before printing its exports");
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("exports within 60 s");
    (child, exports)
}
