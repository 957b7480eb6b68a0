//! The nodes under test: real `colonymesh node` processes, each with its own data dir, config
//! file and log, either in their own network namespaces (partitions possible) or on loopback.
//! Faults act on them by pid: SIGKILL, SIGSTOP/SIGCONT, SIGTERM and start again.

use crate::netns::NetNs;
use anyhow::Context as _;
use node::client::Client;
use proto::mesh::ClusterReply;
use proto::msgs::{EmptyMsg, VersionMsg};
use proto::{PrivateKey, Request};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long a node may take to answer after it was started.
const START_WAIT: Duration = Duration::from_secs(60);
/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(20);
/// Longest wait for one status or leader query.
const QUERY_WAIT: Duration = Duration::from_secs(3);

/// Where and how to run the nodes.
pub struct Options {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub nodes: usize,
    /// Network namespaces (root only) instead of loopback.
    pub netns: bool,
    /// Loopback only: node i uses API port base+10i, TCP +1, QUIC +2.
    pub base_port: u16,
}

/// One node process.
pub struct Node {
    pub name: String,
    pub host: String,
    pub api_port: u16,
    /// Program and arguments that start it (also after a kill).
    command: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    pub fn client(&self) -> Client {
        Client::new(&self.host, self.api_port, false)
    }

    /// True while the process runs (paused or not).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", self.name))?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
        }
    }

    async fn wait_answering(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_WAIT;
        let version = Request::Version(VersionMsg::default());
        loop {
            let client = self.client();
            let answer =
                tokio::time::timeout(QUERY_WAIT, client.call_raw(&version, None, Duration::ZERO));
            if let Ok(Ok(_)) = answer.await {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                anyhow::bail!(
                    "{} exited ({status}); see {}",
                    self.name,
                    self.log.display()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} did not answer within {START_WAIT:?}; see {}",
                self.name,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The running mesh.
pub struct Mesh {
    pub nodes: Vec<Node>,
    /// The server owner's key (`getclustermsg`, `getstatedigestmsg`, adding colonies).
    pub server: PrivateKey,
    net: Option<NetNs>,
}

fn run(binary: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = std::process::Command::new(binary)
        .args(args)
        .output()
        .with_context(|| format!("run {}", binary.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "colonymesh {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A node's config file: fast failure detection and frequent snapshots, so that faults
/// exercise voter replacement and snapshot installs too.
fn config_toml(
    node: &Node,
    dir: &Path,
    server_id: &str,
    listen: &[String],
    first: Option<(&str, &str)>,
) -> String {
    let quoted: Vec<String> = listen.iter().map(|l| format!("{l:?}")).collect();
    let data_dir = dir.join(&node.name);
    let mut text = format!(
        "version = 1\ndata_dir = {data:?}\nserver_id = {server_id:?}\n\n\
         [api]\nhost = {host:?}\nport = {port}\n\n\
         [raft]\nsnapshot_logs = 2000\nsnapshot_logs_kept = 500\n\n\
         [mesh]\nname = {name:?}\nsite = {site:?}\nlisten = [{listen}]\n\
         stabilization_ms = 2000\nvoter_dead_ms = 6000\n",
        data = data_dir.display().to_string(),
        host = node.host,
        port = node.api_port,
        name = node.name,
        site = ["a", "b", "c"][node.name[1..].parse::<usize>().unwrap_or(1) % 3],
        listen = quoted.join(", "),
    );
    match first {
        None => text += &format!("mesh_dir = {:?}\n", dir.join("mesh").display().to_string()),
        Some((join, token)) => text += &format!("join = [{join:?}]\ntoken = {token:?}\n"),
    }
    text
}

impl Mesh {
    /// Creates the mesh (root key, token), starts node 1, then the others joining through it,
    /// and waits until every node answers and the voters are in place.
    pub async fn start(options: &Options, server: PrivateKey) -> anyhow::Result<Mesh> {
        let net = match options.netns {
            true => Some(NetNs::create(options.nodes)?),
            false => None,
        };
        let dir = &options.dir;
        std::fs::create_dir_all(dir)?;
        let bin = &options.binary;
        let mesh_dir = dir.join("mesh");
        let mesh_dir = mesh_dir.to_str().context("utf-8 dir")?;
        run(
            bin,
            &["init", "--dir", mesh_dir, "--server-id", &server.id()],
        )?;
        let token = run(bin, &["token", "create", "--dir", mesh_dir, "--ttl", "24h"])?;
        let mut nodes = Vec::new();
        let mut first_addr = String::new();
        for i in 0..options.nodes {
            let name = format!("n{}", i + 1);
            let data_dir = dir.join(&name);
            let peer = run(
                bin,
                &["peer-id", "--data-dir", data_dir.to_str().context("utf-8")?],
            )?;
            let (host, api, tcp, quic) = match &net {
                Some(net) => (net.ip(i), 7000, 7001, 7002),
                None => {
                    let api = options.base_port + 10 * (i as u16 + 1);
                    ("127.0.0.1".to_string(), api, api + 1, api + 2)
                }
            };
            let listen = vec![
                format!("/ip4/{host}/tcp/{tcp}"),
                format!("/ip4/{host}/udp/{quic}/quic-v1"),
            ];
            let mut node = Node {
                name: name.clone(),
                host: host.clone(),
                api_port: api,
                command: Vec::new(),
                log: dir.join(format!("{name}.log")),
                child: None,
                paused: false,
            };
            let first = (i > 0).then_some((first_addr.as_str(), token.as_str()));
            let config = config_toml(&node, dir, &server.id(), &listen, first);
            let config_path = dir.join(format!("{name}.toml"));
            std::fs::write(&config_path, config)?;
            if i == 0 {
                first_addr = format!("/ip4/{host}/tcp/{tcp}/p2p/{peer}");
            }
            let mut command = Vec::new();
            if let Some(net) = &net {
                command.extend(["ip", "netns", "exec"].map(String::from));
                command.push(net.namespace(i));
            }
            command.push(bin.display().to_string());
            command.extend(["node".to_string(), "--config".to_string()]);
            command.push(config_path.display().to_string());
            node.command = command;
            nodes.push(node);
        }
        let mut mesh = Mesh { nodes, server, net };
        mesh.nodes[0].spawn()?;
        mesh.nodes[0].wait_answering().await?;
        for node in &mut mesh.nodes[1..] {
            node.spawn()?;
        }
        for node in &mut mesh.nodes[1..] {
            node.wait_answering().await?;
        }
        let voters = options.nodes.min(3);
        let deadline = Instant::now() + START_WAIT;
        while mesh.voters().await < voters {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the mesh did not reach {voters} voters"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(mesh)
    }

    async fn cluster_view(&self, i: usize) -> Option<ClusterReply> {
        let request = Request::GetCluster(EmptyMsg {});
        let node = &self.nodes[i];
        if !node.is_running() || node.is_paused() {
            return None;
        }
        let client = node.client();
        let call = client.call::<ClusterReply>(&request, &self.server);
        tokio::time::timeout(QUERY_WAIT, call).await.ok()?.ok()
    }

    async fn voters(&self) -> usize {
        match self.cluster_view(0).await {
            Some(view) => view.nodes.iter().filter(|n| n.role == "voter").count(),
            None => 0,
        }
    }

    /// The index of the node a majority-side node names as leader, if any.
    pub async fn leader(&self) -> Option<usize> {
        for i in 0..self.nodes.len() {
            if let Some(view) = self.cluster_view(i).await {
                let name = view.leader?.name;
                return self.nodes.iter().position(|n| n.name == name);
            }
        }
        None
    }

    /// SIGKILL, then reap it, so its data dir is free for a restart.
    pub async fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill().await;
        }
        node.paused = false;
    }

    pub fn pause(&mut self, i: usize) {
        self.nodes[i].signal(libc::SIGSTOP);
        self.nodes[i].paused = true;
    }

    pub fn resume(&mut self, i: usize) {
        self.nodes[i].signal(libc::SIGCONT);
        self.nodes[i].paused = false;
    }

    /// SIGTERM and wait (bounded; SIGKILL after `STOP_WAIT`).
    pub async fn stop(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.paused {
            node.signal(libc::SIGCONT);
        }
        node.signal(libc::SIGTERM);
        if let Some(mut child) = node.child.take() {
            if tokio::time::timeout(STOP_WAIT, child.wait()).await.is_err() {
                eprintln!(
                    "chaos: {} ignored SIGTERM for {STOP_WAIT:?}; killing it",
                    node.name
                );
                let _ = child.kill().await;
            }
        }
        node.paused = false;
    }

    /// Starts a stopped or killed node again on its data dir.
    pub fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        if self.nodes[i].is_running() {
            return Ok(());
        }
        self.nodes[i].spawn()
    }

    pub fn partition(&mut self, side: &std::collections::BTreeSet<usize>) -> anyhow::Result<()> {
        match &mut self.net {
            Some(net) => net.partition(side),
            None => anyhow::bail!("partitions need the namespace network (root)"),
        }
    }

    /// Ends every fault: resumes paused nodes, starts stopped ones, heals the network.
    pub fn heal_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_paused() {
                self.resume(i);
            }
            self.start_node(i)?;
        }
        if let Some(net) = &mut self.net {
            net.heal()?;
        }
        Ok(())
    }

    /// Stops every node (SIGTERM, bounded), then removes the network.
    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i).await;
        }
        drop(self.net.take());
    }
}
