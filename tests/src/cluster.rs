//! An in-process mesh of real nodes: real libp2p on loopback, real RocksDB in temp dirs,
//! ports 0. Node 0 bootstraps; the others join through it.

use crate::{add_colony, client_of, register_executor, test_config, test_key, wait_for};
use node::client::Client;
use node::clock::{Clock as _, SystemClock};
use node::config::NodeConfig;
use node::node::NodeHandle;
use node::trust;
use proto::PrivateKey;
use std::sync::Arc;
use std::time::Duration;

/// A running mesh. `nodes[i]` is `None` after `stop(i)`.
pub struct Cluster {
    pub nodes: Vec<Option<NodeHandle>>,
    /// Each node's config, to restart it on its data dir.
    pub configs: Vec<NodeConfig>,
    /// Keep the data dirs for restarts; removed on drop.
    pub dirs: Vec<tempfile::TempDir>,
    pub server: PrivateKey,
    pub colony: PrivateKey,
    pub executor: PrivateKey,
}

impl Cluster {
    /// Starts `size` nodes, waits for `min(size, 3)` voters, and provisions colony `dev` with
    /// the approved executor `worker` (type `cli`) through node 0.
    pub async fn start(size: usize) -> Cluster {
        Cluster::start_with(size, |_| {}).await
    }

    /// Like `start`, with `adjust` applied to every node's config.
    pub async fn start_with(size: usize, adjust: impl Fn(&mut NodeConfig)) -> Cluster {
        Cluster::start_with_colony(size, |config, _| adjust(config)).await
    }

    /// Like `start_with`; `adjust` also gets the colony owner's key (for built-in executors
    /// that register themselves).
    pub async fn start_with_colony(
        size: usize,
        adjust: impl Fn(&mut NodeConfig, &PrivateKey),
    ) -> Cluster {
        let server = test_key();
        let mut cluster = Cluster {
            configs: Vec::new(),
            nodes: Vec::new(),
            dirs: Vec::new(),
            server,
            colony: test_key(),
            executor: test_key(),
        };
        for i in 0..size {
            let dir = tempfile::tempdir().expect("create temp dir");
            let mut config = test_config(dir.path(), &cluster.server);
            config.mesh.name = format!("n{i}");
            if i > 0 {
                config.mesh.join = cluster.node(0).join_addrs();
                config.mesh.token = Some(cluster.token(3600));
            }
            adjust(&mut config, &cluster.colony);
            let config = config.validate().expect("valid config");
            let handle = node::node::start(config.clone(), Arc::new(SystemClock))
                .await
                .expect("start node");
            cluster.configs.push(config);
            cluster.nodes.push(Some(handle));
            cluster.dirs.push(dir);
        }
        let voters = size.min(3);
        wait_for(
            "the autopilot to reach its voter target",
            Duration::from_secs(30),
            || async { (cluster.node(0).raft.status().voters.len() == voters).then_some(()) },
        )
        .await;
        let client = cluster.client(0);
        add_colony(&client, &cluster.server, &cluster.colony).await;
        register_executor(&client, &cluster.colony, &cluster.executor, "worker", "cli").await;
        cluster
    }

    /// A join token signed by node 0's mesh root (node 0 bootstrapped the mesh), valid for
    /// `ttl_seconds` (negative: already expired).
    pub fn token(&self, ttl_seconds: i64) -> String {
        let mesh_dir = self.dirs[0].path().join("mesh");
        let identity = trust::load_identity(&mesh_dir)
            .expect("read mesh")
            .expect("mesh exists");
        let root = trust::load_root_key(&mesh_dir, &identity)
            .expect("read root")
            .expect("root");
        let now = SystemClock.now_nanos() / 1_000_000_000;
        root.token(&identity, now + ttl_seconds, [0; 16])
    }

    pub fn node(&self, i: usize) -> &NodeHandle {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// A client for node `i`: over TLS, trusting its certificate, when the nodes serve TLS
    /// with a self-signed certificate (as `api.tls_cert`).
    pub fn client(&self, i: usize) -> Client {
        match &self.configs[i].api.tls_cert {
            None => client_of(self.node(i)),
            Some(cert) => {
                let trust = node::tls::ClientTls {
                    ca_file: Some(cert.clone()),
                    skip_verify: false,
                };
                Client::with_tls("127.0.0.1", self.node(i).api_addr.port(), Some(&trust))
                    .expect("a client trusting the node's certificate")
            }
        }
    }

    /// The index of the node every running node agrees leads.
    pub async fn leader(&self) -> usize {
        wait_for("an agreed leader", Duration::from_secs(30), || async {
            let running: Vec<_> = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| Some((i, n.as_ref()?)))
                .collect();
            let leader = running[0].1.raft.status().leader?;
            let agreed = running
                .iter()
                .all(|(_, n)| n.raft.status().leader == Some(leader));
            let index = running.iter().find(|(_, n)| n.raft.node_id() == leader)?.0;
            agreed.then_some(index)
        })
        .await
    }

    /// Stops node `i` (its data dir is kept).
    pub async fn stop(&mut self, i: usize) {
        if let Some(handle) = self.nodes[i].take() {
            handle.stop().await;
        }
    }

    /// Halts node `i` without a graceful hand-over, like a crash (its data dir is kept).
    pub async fn crash(&mut self, i: usize) {
        if let Some(handle) = self.nodes[i].take() {
            handle.halt().await;
        }
    }

    /// Starts stopped node `i` again on its data dir.
    pub async fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        let config = self.configs[i].clone();
        // A stopped node's RocksDB lock is released by background tasks shortly after stop.
        let start = async {
            loop {
                match node::node::start(config.clone(), Arc::new(SystemClock)).await {
                    Ok(handle) => return handle,
                    Err(error) if format!("{error:#}").contains("lock") => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(error) => panic!("restart node {i}: {error:#}"),
                }
            }
        };
        let handle = tokio::time::timeout(Duration::from_secs(60), start)
            .await
            .expect("restarted");
        self.nodes[i] = Some(handle);
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i).await;
        }
    }
}
