//! `Node::start` wires the modules into a running node: store, raft, waiters, API listener and
//! the leader's tick task. The returned `NodeHandle` owns every background task.
//!
//! ```text
//!   Store::open --> RaftNode::start (bootstrap one voter if new) --> wait for leadership
//!     --> InitServer (server owner id) --> bind API --> spawn api::serve, tick loop
//! ```

use crate::api::{self, ApiState};
use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::raft::RaftNode;
use crate::sched::Waiters;
use crate::shutdown::{Shutdown, Signal};
use crate::state::query;
use crate::store::Store;
use anyhow::Context as _;
use proto::command::{Command, Op, Reply};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// How long a starting node waits to become leader of its (one-voter) group.
const LEADERSHIP_WAIT: Duration = Duration::from_secs(10);

/// A running node.
pub struct NodeHandle {
    /// Where the API listens (the real port when configured with port 0).
    pub api_addr: SocketAddr,
    pub raft: RaftNode,
    pub store: Store,
    /// The recorded server owner id.
    pub server_id: Option<String>,
    /// Long-poll registry, exposed for observation (tests, metrics).
    waiters: Arc<Waiters>,
    shutdown: Shutdown,
    /// API server and tick loop; drained on stop.
    tasks: JoinSet<()>,
}

/// Starts a node from a validated config. Fails if the store cannot be opened or raft does
/// not elect this node within `LEADERSHIP_WAIT`.
pub async fn start(config: NodeConfig, clock: Arc<dyn Clock>) -> anyhow::Result<NodeHandle> {
    let db_path = config.data_dir.join("db");
    std::fs::create_dir_all(&db_path)
        .with_context(|| format!("create data dir {}", db_path.display()))?;
    let store = tokio::task::spawn_blocking(move || Store::open(&db_path)).await??;
    let waiters = Arc::new(Waiters::new(config.api.long_polls_max));
    let raft = RaftNode::start(&config.raft, store.clone(), waiters.clone()).await?;
    raft.wait_ready(LEADERSHIP_WAIT)
        .await
        .context("wait for raft leadership")?;
    let server_id = match &config.server_id {
        Some(id) => Some(init_server(&raft, clock.as_ref(), id).await?),
        None => crate::state::auth::server_id(&store)?,
    };
    let listener = tokio::net::TcpListener::bind((config.api.host, config.api.port))
        .await
        .with_context(|| format!("bind API on {}:{}", config.api.host, config.api.port))?;
    let api_addr = listener.local_addr()?;
    let (shutdown, signal) = Shutdown::new();
    let state = Arc::new(ApiState {
        store: store.clone(),
        raft: raft.clone(),
        waiters: waiters.clone(),
        clock: clock.clone(),
        config: config.api.clone(),
        shutdown: signal.clone(),
        advertised_host: api_addr.ip().to_string(),
        advertised_port: api_addr.port(),
    });
    let mut tasks = JoinSet::new();
    let api_signal = signal.clone();
    tasks.spawn(async move {
        if let Err(error) = api::serve(listener, state, api_signal.wait()).await {
            tracing::error!("failed to serve API: {error}");
        }
    });
    let tick = Duration::from_millis(config.raft.tick_ms);
    tasks.spawn(tick_loop(raft.clone(), store.clone(), clock, tick, signal));
    tracing::info!(%api_addr, node_id = config.raft.node_id, "node ready");
    Ok(NodeHandle {
        api_addr,
        raft,
        store,
        server_id,
        waiters,
        shutdown,
        tasks,
    })
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
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = &mut stopped => return,
        }
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
        let command = Command {
            now_nanos: now,
            request_id: clock.request_id(),
            caller_id: String::new(),
            op: Op::Tick,
        };
        match raft.propose(command).await {
            Ok(response) => tracing::debug!(?response, "tick applied"),
            Err(error) => tracing::warn!("failed to propose tick: {error}"),
        }
    }
}

impl NodeHandle {
    /// Assign long-polls currently waiting on this node.
    pub fn long_polls(&self) -> usize {
        self.waiters.live()
    }

    /// Stops the API and tick loop, then raft; waits for all of them.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        while let Some(result) = self.tasks.join_next().await {
            if let Err(error) = result {
                tracing::error!("node task ended abnormally: {error}");
            }
        }
        if let Err(error) = self.raft.shutdown().await {
            tracing::error!("failed to stop raft: {error}");
        }
    }
}
