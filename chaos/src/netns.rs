//! A private network for the nodes of a chaos run: one Linux network namespace per node, all
//! on a bridge that lives in its own "hub" namespace, plus a veth into the host so the
//! workload (running on the host) reaches every node. Partitions are blackhole routes inside
//! the node namespaces, so they cut node-to-node traffic only; clients still reach both sides.
//!
//! ```text
//!   host 10.213.0.254 --veth--> [hub: bridge] <--veth-- [n1 10.213.0.1] [n2 .2] ...
//! ```
//!
//! The bridge sits in a namespace of its own because the host's firewall (Docker sets the
//! FORWARD policy to DROP and filters bridged traffic) would otherwise drop the nodes'
//! traffic. Needs root and iproute2. One run at a time holds the lock file; a lock taken means
//! namespaces left by an earlier run are stale and are removed first.

use anyhow::Context as _;
use std::collections::BTreeSet;
use std::os::fd::AsRawFd as _;
use std::process::Command;

const PREFIX: &str = "cmchaos";
const SUBNET: &str = "10.213.0";
const HOST_IF: &str = "cmchaos-h";
const LOCK_FILE: &str = "/run/colonymesh-chaos.lock";

/// The namespaces of one run; removed on drop.
pub struct NetNs {
    nodes: usize,
    /// Node pairs (a < b) currently cut from each other.
    cut: BTreeSet<(usize, usize)>,
    _lock: std::fs::File,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("run `ip` (iproute2 is needed for the namespace network)")?;
    anyhow::ensure!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

fn in_ns(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut all = vec!["netns", "exec", ns, "ip"];
    all.extend_from_slice(args);
    ip(&all)
}

fn hub() -> String {
    format!("{PREFIX}-hub")
}

/// Removes every namespace and the host interface a run of this tool may have left.
fn remove_leftovers() {
    let listed = Command::new("ip").args(["netns", "list"]).output();
    if let Ok(listed) = listed {
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name.starts_with(PREFIX) {
                let _ = ip(&["netns", "del", name]);
            }
        }
    }
    let _ = Command::new("ip").args(["link", "del", HOST_IF]).output();
}

impl NetNs {
    /// Creates the hub, the host link and `nodes` node namespaces.
    pub fn create(nodes: usize) -> anyhow::Result<NetNs> {
        anyhow::ensure!((1..=20).contains(&nodes), "1 to 20 nodes, not {nodes}");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)
            .with_context(|| format!("open {LOCK_FILE} (the namespace network needs root)"))?;
        // SAFETY: flock on a file descriptor we own for the lifetime of `lock`.
        let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        anyhow::ensure!(locked == 0, "another chaos run holds {LOCK_FILE}");
        remove_leftovers();
        let net = NetNs {
            nodes,
            cut: BTreeSet::new(),
            _lock: lock,
        };
        let hub = hub();
        ip(&["netns", "add", &hub])?;
        in_ns(&hub, &["link", "set", "lo", "up"])?;
        in_ns(&hub, &["link", "add", "br0", "type", "bridge"])?;
        in_ns(&hub, &["link", "set", "br0", "up"])?;
        ip(&[
            "link", "add", HOST_IF, "type", "veth", "peer", "name", "host", "netns", &hub,
        ])?;
        ip(&["addr", "add", &format!("{SUBNET}.254/24"), "dev", HOST_IF])?;
        ip(&["link", "set", HOST_IF, "up"])?;
        in_ns(&hub, &["link", "set", "host", "master", "br0", "up"])?;
        for i in 0..nodes {
            let ns = net.namespace(i);
            let port = format!("n{}", i + 1);
            ip(&["netns", "add", &ns])?;
            in_ns(&ns, &["link", "set", "lo", "up"])?;
            in_ns(
                &hub,
                &[
                    "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            )?;
            in_ns(&hub, &["link", "set", &port, "master", "br0", "up"])?;
            in_ns(
                &ns,
                &["addr", "add", &format!("{}/24", net.ip(i)), "dev", "eth0"],
            )?;
            in_ns(&ns, &["link", "set", "eth0", "up"])?;
        }
        Ok(net)
    }

    /// The namespace of node `i` (0-based).
    pub fn namespace(&self, i: usize) -> String {
        format!("{PREFIX}-n{}", i + 1)
    }

    /// The address of node `i` (0-based).
    pub fn ip(&self, i: usize) -> String {
        format!("{SUBNET}.{}", i + 1)
    }

    /// Cuts every node in `side` from every node not in it, both ways.
    pub fn partition(&mut self, side: &BTreeSet<usize>) -> anyhow::Result<()> {
        for a in 0..self.nodes {
            for b in (a + 1)..self.nodes {
                if side.contains(&a) != side.contains(&b) && self.cut.insert((a, b)) {
                    self.route("add", a, b)?;
                    self.route("add", b, a)?;
                }
            }
        }
        Ok(())
    }

    /// Removes every cut.
    pub fn heal(&mut self) -> anyhow::Result<()> {
        for (a, b) in std::mem::take(&mut self.cut) {
            self.route("del", a, b)?;
            self.route("del", b, a)?;
        }
        Ok(())
    }

    fn route(&self, verb: &str, from: usize, to: usize) -> anyhow::Result<()> {
        let target = format!("{}/32", self.ip(to));
        in_ns(
            &self.namespace(from),
            &["route", verb, "blackhole", &target],
        )
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        remove_leftovers();
    }
}
