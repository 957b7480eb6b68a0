//! `node::start` wires the modules into a running node: store, network, raft, waiters, API
//! listener, peer service, autopilot and the leader's tick. The returned `NodeHandle` owns
//! every background task.
//!
//! ```text
//!   Store::open --> net::new (spawn EventLoop) --> bind API --> RaftNode::start
//!     --> spawn mesh::serve_peers --> mesh::join (first start with join peers)
//!     --> wait for a leader --> InitServer --> spawn api::serve, tick loop, autopilot
//! ```

use crate::api::{self, ApiState};
use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::mesh;
use crate::net;
use crate::raft::RaftNode;
use crate::sched::Waiters;
use crate::shutdown::{Shutdown, Signal};
use crate::state::query;
use crate::store::Store;
use crate::trust::{self, MeshIdentity, RootKey, Verifier};
use anyhow::Context as _;
use proto::command::{Command, Op, Reply};
use proto::mesh::NodeInfo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tracing::Instrument as _;

/// How long a stopping node waits for its tasks before aborting them.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a node waits for its listeners to report their addresses.
const LISTEN_WAIT: Duration = Duration::from_secs(5);
/// How long a wildcard listener may report loopback addresses only before the node takes
/// them (a machine without another interface).
const WILDCARD_SETTLE: Duration = Duration::from_secs(1);

/// A running node.
pub struct NodeHandle {
    /// Where the API listens (the real port when configured with port 0).
    pub api_addr: SocketAddr,
    pub raft: RaftNode,
    pub store: Store,
    /// This node as peers see it (peer id, addresses, name, site).
    pub info: NodeInfo,
    /// The recorded server owner id.
    pub server_id: Option<String>,
    /// Long-poll registry, exposed for observation (tests, metrics).
    waiters: Arc<Waiters>,
    /// The built-in executors (`colonymesh dev` waits for their registration).
    pub executors: crate::exec::Executors,
    shutdown: Shutdown,
    /// Network loop, peer service, API server, tick loop and autopilot; drained on stop.
    tasks: JoinSet<()>,
}

/// The listen addresses once every configured listener has reported its own. A wildcard
/// listener reports one address per interface as the OS lists them, loopback often first:
/// it counts only once it has a non-loopback address too, or after `WILDCARD_SETTLE` (a
/// machine with nothing but loopback). Advertising too early would tell peers loopback
/// addresses only, which lead them to themselves.
async fn listen_addrs(net: &net::Client, configured: &[String]) -> anyhow::Result<Vec<String>> {
    let poll = async {
        let started = crate::clock::monotonic();
        loop {
            let addrs = net.listen_addrs().await?;
            let settle_over = started.elapsed() >= WILDCARD_SETTLE;
            if listeners_reported(configured, &addrs, settle_over) {
                return anyhow::Ok(addrs);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(LISTEN_WAIT, poll)
        .await
        .context("wait for mesh listeners")?
}

/// Whether every configured listen address has a reported counterpart: same transport, and
/// for a wildcard one a non-loopback address unless `settle_over`.
fn listeners_reported(configured: &[String], reported: &[String], settle_over: bool) -> bool {
    // "/ip4/0.0.0.0/tcp/0" -> ("ip4", "tcp", ""); "/ip4/h/udp/7002/quic-v1" -> (.., "quic-v1").
    let transport = |addr: &str| -> (String, String, String) {
        let parts: Vec<&str> = addr.split('/').collect();
        let at = |i: usize| parts.get(i).copied().unwrap_or_default().to_string();
        (at(1), at(3), at(5))
    };
    configured.iter().all(|want| {
        let wildcard = want.starts_with("/ip4/0.0.0.0/") || want.starts_with("/ip6/::/");
        reported.iter().any(|got| {
            transport(got) == transport(want) && (!wildcard || settle_over || !is_loopback(got))
        })
    })
}

fn is_loopback(addr: &str) -> bool {
    addr.starts_with("/ip4/127.") || addr.starts_with("/ip6/::1/")
}

/// The node's dashboard key, made on first start (`<data_dir>/dashboard.key`, owner-only).
fn dashboard_key(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("dashboard.key");
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => return Ok(key.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    }
    let key = hex::encode(crate::clock::key_entropy());
    crate::host::write_private(&path, key.as_bytes())?;
    Ok(key)
}

/// The addresses to tell peers: loopback ones only when there is nothing else (a wildcard
/// listener also reports 127.0.0.1, which would lead other machines to themselves).
fn advertised(addrs: Vec<String>) -> Vec<String> {
    let (loopback, other): (Vec<String>, Vec<String>) =
        addrs.into_iter().partition(|a| is_loopback(a));
    if other.is_empty() {
        loopback
    } else {
        other
    }
}

/// Starts a node from a validated config. Fails if the store cannot be opened, the mesh
/// cannot be joined, or no leader appears within `mesh.join_timeout_ms`.
pub async fn start(config: NodeConfig, clock: Arc<dyn Clock>) -> anyhow::Result<NodeHandle> {
    let db_path = config.data_dir.join("db");
    std::fs::create_dir_all(&db_path)
        .with_context(|| format!("create data dir {}", db_path.display()))?;
    let store = tokio::task::spawn_blocking(move || Store::open(&db_path)).await??;
    let keypair = net::load_or_create_keypair(&config.data_dir.join("node.key"))?;
    let peer_id = net::peer_id_of(&keypair);
    let name = match config.mesh.name.as_str() {
        "" => peer_id
            .chars()
            .rev()
            .take(8)
            .collect::<String>()
            .chars()
            .rev()
            .collect(),
        name => name.to_string(),
    };
    // Every task of this node logs inside this span (nodes may share a process in tests).
    let span = tracing::info_span!("node", node = %name);
    let (shutdown, signal) = Shutdown::new();
    let mut tasks = JoinSet::new();
    let net_config = net::NetConfig {
        listen: config.mesh.listen.clone(),
        mdns: config.mesh.mdns,
    };
    let (net_client, net_events, event_loop) = net::new(keypair, &net_config)?;
    tasks.spawn(
        event_loop
            .run(signal.clone().wait())
            .instrument(span.clone()),
    );
    let addrs = advertised(listen_addrs(&net_client, &config.mesh.listen).await?);
    let server_tls = match (&config.api.tls_cert, &config.api.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::ServerTls::load(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind((config.api.host, config.api.port))
        .await
        .with_context(|| format!("bind API on {}:{}", config.api.host, config.api.port))?;
    let api_addr = listener.local_addr()?;
    let info = NodeInfo {
        peer_id,
        addrs,
        name,
        site: config.mesh.site.clone(),
        api_addr: api_addr.to_string(),
    };
    let waiters = Arc::new(Waiters::new(config.api.long_polls_max));
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let guard = Arc::new(crate::guard::Guard::new(
        config.guard.clone(),
        metrics.clone(),
    ));
    let bootstrap = config.mesh.join.is_empty();
    let (identity, root) = mesh_identity(&config, bootstrap)?;
    let mut certificate = trust::load_certificate(&config.data_dir)?;
    if let (None, Some(root)) = (&certificate, &root) {
        let cert = root.certify(
            &identity.mesh_id,
            &info.peer_id,
            clock.now_nanos() / 1_000_000_000,
        );
        trust::save_certificate(&config.data_dir, &cert)?;
        certificate = Some(cert);
    }
    if let Some(cert) = &certificate {
        net_client.set_certificate(cert.clone());
    }
    let deps = crate::raft::Deps {
        store: store.clone(),
        waiters: waiters.clone(),
        net: net_client.clone(),
        metrics: metrics.clone(),
        clock: clock.clone(),
    };
    let raft = RaftNode::start(&config.raft, deps, info.clone(), bootstrap).await?;
    let server_id_default = identity.server_id.clone();
    let admission = Arc::new(mesh::Admission {
        verifier: Verifier::new(identity.clone(), {
            let store = store.clone();
            Box::new(move |peer| query::is_revoked(&store, peer).unwrap_or(false))
        }),
        root,
        clock: clock.clone(),
    });
    let fleet = Arc::new(mesh::status::Fleet::default());
    let serve = mesh::serve_peers(
        raft.clone(),
        admission,
        fleet.clone(),
        guard.clone(),
        net_events,
        signal.clone(),
    );
    tasks.spawn(serve.instrument(span.clone()));
    let join_timeout = Duration::from_millis(config.mesh.join_timeout_ms);
    // A certified node with a raft log (or snapshot) joined before: the leader will contact it.
    let has_state = store.log_last()?.is_some() || store.load_snapshot()?.is_some();
    let member = certificate.is_some() && has_state;
    if !bootstrap && !member {
        let token = config.mesh.token.clone();
        if certificate.is_none() && token.is_none() {
            anyhow::bail!("joining a mesh needs a join token (colonymesh token create)");
        }
        let issued = mesh::join(&net_client, &config.mesh, &info, token, join_timeout).await?;
        if let Some(cert) = issued {
            trust::check_certificate(&identity, &cert, &info.peer_id)
                .context("check the certificate the admission node issued")?;
            trust::save_certificate(&config.data_dir, &cert)?;
            net_client.set_certificate(cert);
        }
    }
    raft.wait_ready(join_timeout)
        .await
        .context("wait for the mesh")?;
    let recorded = crate::state::auth::server_id(&store)?;
    let server_id = match (
        recorded,
        config.server_id.as_ref().or(server_id_default.as_ref()),
    ) {
        (Some(recorded), requested) => {
            if requested.is_some_and(|id| !id.eq_ignore_ascii_case(&recorded)) {
                tracing::warn!(%recorded, "server id already recorded; keeping it");
            }
            Some(recorded)
        }
        (None, Some(id)) if bootstrap => Some(init_server(&raft, clock.as_ref(), id).await?),
        // A joining node gets the id its mesh's first node recorded by replication (it may not
        // even know where the leader is until it has installed a snapshot).
        (None, Some(id)) => Some(id.to_ascii_lowercase()),
        (None, None) => None,
    };
    // Before the API serves: `/ready` reports on them. Their first requests wait in the bound
    // listener's backlog until it does.
    let executors = crate::exec::start(&config, &info.name, api_addr, &mut tasks, signal.clone())
        .instrument(span.clone())
        .await
        .context("start built-in executors")?;
    let state = Arc::new(ApiState {
        store: store.clone(),
        raft: raft.clone(),
        waiters: waiters.clone(),
        clock: clock.clone(),
        config: config.api.clone(),
        shutdown: signal.clone(),
        node_name: info.name.clone(),
        fleet: fleet.clone(),
        status_down: Duration::from_millis(config.mesh.status_down_ms),
        advertised_host: api_addr.ip().to_string(),
        advertised_port: api_addr.port(),
        metrics: metrics.clone(),
        net: net_client.clone(),
        guard: guard.clone(),
        dashboard_key: dashboard_key(&config.data_dir)?,
        signers: api::Signers::default(),
        executors: executors.clone(),
    });
    let api_signal = signal.clone();
    let api = async move {
        if let Err(error) = api::serve(listener, server_tls, state, api_signal).await {
            tracing::error!("failed to serve API: {error}");
        }
    };
    tasks.spawn(api.instrument(span.clone()));
    let tick = Duration::from_millis(config.raft.tick_ms);
    let ticks = tick_loop(
        raft.clone(),
        store.clone(),
        clock.clone(),
        tick,
        signal.clone(),
    );
    tasks.spawn(ticks.instrument(span.clone()));
    let housekeeping = housekeeping_loop(
        raft.clone(),
        clock.clone(),
        config.housekeeping.clone(),
        signal.clone(),
    );
    tasks.spawn(housekeeping.instrument(span.clone()));
    let status_period = Duration::from_millis(config.mesh.status_ms);
    let gossip = mesh::status::publish(
        raft.clone(),
        net_client.clone(),
        info.clone(),
        fleet.clone(),
        mesh::status::Sources {
            data_dir: config.data_dir.clone(),
            executors: executors.clone(),
        },
        status_period,
        signal.clone(),
    );
    tasks.spawn(gossip.instrument(span.clone()));
    let release = mesh::status::release_lost(
        raft.clone(),
        fleet.clone(),
        clock.clone(),
        Duration::from_millis(config.mesh.release_executors_ms),
        status_period,
        signal.clone(),
    );
    tasks.spawn(release.instrument(span.clone()));
    let autopilot = mesh::autopilot::run(
        raft.clone(),
        net_client.clone(),
        clock.clone(),
        config.mesh.clone(),
        signal,
    );
    tasks.spawn(autopilot.instrument(span.clone()));
    span.in_scope(|| tracing::info!(%api_addr, node_id = raft.node_id(), "node ready"));
    Ok(NodeHandle {
        api_addr,
        raft,
        store,
        info,
        server_id,
        waiters,
        executors,
        shutdown,
        tasks,
    })
}

/// The mesh this node belongs to, and the root key if this is an admission node. A node's
/// own copy of `mesh.json` wins; else the mesh dir's; else the join token's; else (when
/// bootstrapping) a new mesh is made in the mesh dir.
fn mesh_identity(
    config: &NodeConfig,
    bootstrap: bool,
) -> anyhow::Result<(MeshIdentity, Option<RootKey>)> {
    let mesh_dir = config
        .mesh
        .mesh_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("mesh"));
    let identity = match trust::load_identity(&config.data_dir)? {
        Some(identity) => identity,
        None => {
            let identity = match (trust::load_identity(&mesh_dir)?, &config.mesh.token) {
                (Some(identity), _) => identity,
                (None, Some(token)) => {
                    let claims = trust::parse_token(token).context("read the join token")?;
                    MeshIdentity {
                        mesh_id: claims.mesh_id,
                        root_public_key: claims.root_public_key,
                        server_id: None,
                    }
                }
                (None, None) if bootstrap => {
                    let entropy = crate::clock::key_entropy();
                    let mesh_entropy = crate::clock::key_entropy();
                    let mesh_id: [u8; 16] = mesh_entropy[..16].try_into().expect("16 of 32 bytes");
                    trust::init(&mesh_dir, config.server_id.clone(), entropy, mesh_id)?
                }
                (None, None) => anyhow::bail!("joining a mesh needs a join token or a mesh dir"),
            };
            trust::save_identity(&config.data_dir, &identity)?;
            identity
        }
    };
    let root = trust::load_root_key(&mesh_dir, &identity)?;
    Ok((identity, root))
}

/// Records the server owner id (first start) or reports the recorded one.
async fn init_server(raft: &RaftNode, clock: &dyn Clock, id: &str) -> anyhow::Result<String> {
    let command = Command {
        now_nanos: clock.now_nanos(),
        request_id: clock.request_id(),
        caller_id: String::new(),
        op: Op::InitServer {
            server_id: id.to_ascii_lowercase(),
        },
    };
    match raft.propose(command).await?.0 {
        Ok(Reply::ServerId(recorded)) => {
            if !recorded.eq_ignore_ascii_case(id) {
                let message = "server id already recorded; keeping it";
                tracing::warn!(%recorded, requested = %id, "{message}");
            }
            Ok(recorded)
        }
        Ok(other) => anyhow::bail!("unexpected reply to InitServer: {other:?}"),
        Err(error) => anyhow::bail!("record server id: {}", error.message),
    }
}

/// On the leader, proposes a `Tick` whenever a deadline is due, at most once per `period`.
async fn tick_loop(
    raft: RaftNode,
    store: Store,
    clock: Arc<dyn Clock>,
    period: Duration,
    stop: Signal,
) {
    let mut ticker = stop.every(period);
    while ticker.tick().await {
        if !raft.is_leader() {
            continue;
        }
        let now = clock.now_nanos();
        match query::next_deadline(&store) {
            Ok(Some(due)) if due < now => {}
            Ok(_) => continue,
            Err(error) => {
                tracing::error!("failed to read deadlines: {error}");
                continue;
            }
        }
        let request_id = clock.request_id();
        let command = Command {
            now_nanos: now,
            request_id,
            caller_id: String::new(),
            op: Op::Tick,
        };
        match raft.propose(command).await {
            Ok(response) => tracing::debug!(?response, "tick applied"),
            Err(error) => tracing::warn!("failed to propose tick: {error}"),
        }
    }
}

/// On the leader, proposes the mesh-wide cleanup (`Op::Housekeep`) every interval.
async fn housekeeping_loop(
    raft: RaftNode,
    clock: Arc<dyn Clock>,
    config: crate::config::HousekeepingConfig,
    stop: Signal,
) {
    let mut ticker = stop.every(Duration::from_secs(config.interval_seconds));
    while ticker.tick().await {
        if !raft.is_leader() || config.retention_seconds + config.stale_executor_seconds == 0 {
            continue;
        }
        let command = Command {
            now_nanos: clock.now_nanos(),
            request_id: clock.request_id(),
            caller_id: String::new(),
            op: Op::Housekeep {
                retention_seconds: config.retention_seconds as i64,
                stale_executor_seconds: config.stale_executor_seconds as i64,
            },
        };
        match raft.propose(command).await {
            Ok(response) => tracing::debug!(?response, "housekeeping applied"),
            Err(error) => tracing::warn!("failed to propose housekeeping: {error}"),
        }
    }
}

impl NodeHandle {
    /// Assign long-polls currently waiting on this node.
    pub fn long_polls(&self) -> usize {
        self.waiters.live()
    }

    /// Addresses other nodes can join through (`.../p2p/<peer id>`).
    pub fn join_addrs(&self) -> Vec<String> {
        self.info
            .addrs
            .iter()
            .map(|a| format!("{a}/p2p/{}", self.info.peer_id))
            .collect()
    }

    /// Graceful stop: a leader first hands over (so writes pause only briefly), then
    /// everything stops as in `halt`.
    pub async fn stop(self) {
        self.raft.step_down().await;
        self.halt().await;
    }

    /// Stops the API, peer service, loops and network, then raft, without handing over
    /// leadership (as close to a crash as an in-process node gets); waits for all of them.
    pub async fn halt(mut self) {
        self.shutdown.trigger();
        // Tasks end on the signal; one stuck in a raft call without quorum is cut off.
        let drain = async {
            while let Some(result) = self.tasks.join_next().await {
                if let Err(error) = result {
                    tracing::error!("node task ended abnormally: {error}");
                }
            }
        };
        if tokio::time::timeout(STOP_GRACE, drain).await.is_err() {
            tracing::warn!("node tasks still running after {STOP_GRACE:?}; aborting them");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        if let Err(error) = self.raft.shutdown().await {
            tracing::error!("failed to stop raft: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_wildcard_listener_waits_for_a_non_loopback_address() {
        let configured = strings(&["/ip4/0.0.0.0/tcp/7001", "/ip4/0.0.0.0/udp/7002/quic-v1"]);
        let loopback_only =
            strings(&["/ip4/127.0.0.1/tcp/7001", "/ip4/127.0.0.1/udp/7002/quic-v1"]);
        assert!(!listeners_reported(&configured, &loopback_only, false));
        assert!(listeners_reported(&configured, &loopback_only, true));
        let tcp_only = strings(&["/ip4/127.0.0.1/tcp/7001", "/ip4/172.29.77.11/tcp/7001"]);
        assert!(
            !listeners_reported(&configured, &tcp_only, false),
            "quic not reported yet"
        );
        let all = strings(&[
            "/ip4/127.0.0.1/tcp/7001",
            "/ip4/172.29.77.11/tcp/7001",
            "/ip4/127.0.0.1/udp/7002/quic-v1",
            "/ip4/172.29.77.11/udp/7002/quic-v1",
        ]);
        assert!(listeners_reported(&configured, &all, false));
        assert_eq!(
            advertised(all),
            strings(&[
                "/ip4/172.29.77.11/tcp/7001",
                "/ip4/172.29.77.11/udp/7002/quic-v1"
            ])
        );
    }

    #[test]
    fn a_loopback_listener_counts_at_once() {
        let configured = strings(&["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"]);
        let reported = strings(&["/ip4/127.0.0.1/tcp/40001"]);
        assert!(!listeners_reported(&configured, &reported, false));
        let reported = strings(&[
            "/ip4/127.0.0.1/tcp/40001",
            "/ip4/127.0.0.1/udp/40002/quic-v1",
        ]);
        assert!(listeners_reported(&configured, &reported, false));
        assert_eq!(advertised(reported.clone()), reported);
    }
}
