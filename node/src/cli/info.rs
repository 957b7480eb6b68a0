//! `colonymesh info`: one screen about the node in the environment and its mesh: version,
//! TLS, readiness, raft role and term, leader, members up, this machine, its executors, and
//! the mesh's colonies, executors and processes. The mesh view needs the server owner key.

use super::env::ClientEnv;
use super::fleet::duration;
use super::output::Output;
use proto::mesh::ClusterReply;
use proto::msgs::{EmptyMsg, ServerInfoReply};
use proto::{Request, Statistics};
use serde::Serialize;

#[derive(Serialize)]
struct Info {
    server: ServerInfoReply,
    ready: bool,
    ready_reason: String,
    cluster: Option<ClusterReply>,
    statistics: Option<Statistics>,
    /// Why the mesh view is missing, if it is.
    note: Option<String>,
}

pub(crate) async fn run(env: &ClientEnv, out: &Output) -> anyhow::Result<()> {
    let client = env.client()?;
    let server: ServerInfoReply = client
        .call_unsigned(&Request::GetServerInfo(EmptyMsg {}))
        .await?;
    let (ready, ready_reason) = client.ready().await?;
    let (mut cluster, mut statistics, mut note) = (None, None, None);
    match env.server_prvkey() {
        Ok(key) => {
            cluster = Some(client.call(&Request::GetCluster(EmptyMsg {}), &key).await?);
            statistics = Some(
                client
                    .call(&Request::GetStatistics(EmptyMsg {}), &key)
                    .await?,
            );
        }
        Err(_) => note = Some("set COLONIES_SERVER_PRVKEY for the mesh view".into()),
    }
    let info = Info {
        server,
        ready,
        ready_reason,
        cluster,
        statistics,
        note,
    };
    if out.json {
        out.show(&info, &[], Vec::new());
        return Ok(());
    }
    super::output::print(&render(&info));
    Ok(())
}

fn render(info: &Info) -> String {
    let mut lines = Vec::new();
    let backend = info.server.backends.first();
    let tls = backend.is_some_and(|b| b.tls);
    let address = backend.map_or("-".to_string(), |b| format!("{}:{}", b.host, b.port));
    lines.push(format!(
        "node      {}  version {}  {}",
        address,
        info.server.buildversion,
        if tls { "https" } else { "http" }
    ));
    lines.push(format!(
        "ready     {}",
        if info.ready {
            "yes"
        } else {
            &info.ready_reason
        }
    ));
    if let Some(cluster) = &info.cluster {
        let me = cluster.nodes.iter().find(|n| n.name == cluster.servedby);
        let leader = cluster.leader.as_ref().map_or("none", |l| l.name.as_str());
        let role = me
            .and_then(|n| n.status.as_ref())
            .map_or("-", |s| s.role.as_str());
        lines.push(format!(
            "raft      {} {}  term {}  applied {}  leader {}",
            cluster.servedby,
            role,
            cluster.term,
            cluster.appliedindex.unwrap_or(0),
            leader
        ));
        let up = cluster.nodes.iter().filter(|n| n.up).count();
        let voters = cluster.nodes.iter().filter(|n| n.role == "voter").count();
        let sites: std::collections::BTreeSet<&str> =
            cluster.nodes.iter().map(|n| n.site.as_str()).collect();
        lines.push(format!(
            "mesh      {} members ({} up, {} voters) in {} site(s)",
            cluster.nodes.len(),
            up,
            voters,
            sites.len()
        ));
        if let Some(status) = me.and_then(|n| n.status.as_ref()) {
            let gib = |bytes: u64| bytes as f64 / (1u64 << 30) as f64;
            lines.push(format!(
                "machine   {} cpus  load {:.2}  memory {:.1}/{:.1} GiB  disk free {:.1} GiB  up {}",
                status.cpus,
                status.load_milli[0] as f64 / 1000.0,
                gib(status
                    .memory_total_bytes
                    .saturating_sub(status.memory_available_bytes)),
                gib(status.memory_total_bytes),
                gib(status.disk_available_bytes),
                duration(status.uptime_seconds)
            ));
            let executors: Vec<String> = status
                .executors
                .iter()
                .map(|e| format!("{} ({}, {} running)", e.name, e.state, e.running))
                .collect();
            lines.push(format!(
                "executors {}",
                if executors.is_empty() {
                    "none built in".to_string()
                } else {
                    executors.join(", ")
                }
            ));
        }
    }
    if let Some(s) = &info.statistics {
        lines.push(format!(
            "colonies  {}  executors {} ({} active)",
            s.colonies, s.executors, s.activeexecutors
        ));
        lines.push(format!(
            "processes {} waiting  {} running  {} successful  {} failed  {} cancelled",
            s.waitingprocesses,
            s.runningprocesses,
            s.successfulprocesses,
            s.failedprocesses,
            s.cancelledprocesses
        ));
        lines.push(format!(
            "workflows {} waiting  {} running  {} successful  {} failed",
            s.waitingworkflows, s.runningworkflows, s.successfulworkflows, s.failedworkflows
        ));
    }
    if let Some(note) = &info.note {
        lines.push(format!("note      {note}"));
    }
    lines.join("\n") + "\n"
}
