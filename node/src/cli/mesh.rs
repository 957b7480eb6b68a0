//! `colonymesh mesh status`: members, roles, sites, leader, applied index and lag, read with
//! `getclustermsg` (server owner key) from the node in the environment, then from the leader,
//! which alone knows every member's replication progress.

use super::env::ClientEnv;
use super::output::Output;
use clap::Subcommand;
use proto::mesh::ClusterReply;
use proto::msgs::EmptyMsg;
use proto::Request;

#[derive(Debug, Subcommand)]
pub(crate) enum MeshCommand {
    /// Show the members of the mesh and how far each has replicated.
    Status,
}

pub(crate) async fn run(command: MeshCommand, env: &ClientEnv, out: &Output) -> anyhow::Result<()> {
    let MeshCommand::Status = command;
    let key = env.server_prvkey()?;
    let request = Request::GetCluster(EmptyMsg {});
    let mut cluster: ClusterReply = env.client()?.call(&request, &key).await?;
    if let Some(leader) = cluster
        .leader
        .clone()
        .filter(|l| l.name != cluster.servedby)
    {
        let port = u16::try_from(leader.apiport).unwrap_or(0);
        match env
            .client_for(&leader.host, port)?
            .call(&request, &key)
            .await
        {
            Ok(view) => cluster = view,
            Err(error) => eprintln!(
                "leader {} unreachable ({error}); showing a follower's view",
                leader.name
            ),
        }
    }
    let leader_id = cluster.leader.as_ref().map(|l| l.nodeid);
    let last = cluster.lastlogindex.unwrap_or(0);
    let rows = cluster
        .nodes
        .iter()
        .map(|n| {
            let role = match Some(n.nodeid) == leader_id {
                true => format!("{} (leader)", n.role),
                false => n.role.clone(),
            };
            let matched = n.matchedindex.map_or("-".to_string(), |m| m.to_string());
            let lag = n
                .matchedindex
                .map_or("-".to_string(), |m| last.saturating_sub(m).to_string());
            let api = format!("{}:{}", n.host, n.apiport);
            let health = match (n.up, n.lastheardms) {
                (true, _) => "up".to_string(),
                (false, Some(ms)) => format!("down ({} s)", ms / 1000),
                (false, None) => "unknown".to_string(),
            };
            vec![
                n.name.clone(),
                role,
                n.site.clone(),
                health,
                api,
                matched,
                lag,
            ]
        })
        .collect();
    out.show(
        &cluster,
        &["NAME", "ROLE", "SITE", "HEALTH", "API", "MATCHED", "LAG"],
        rows,
    );
    if cluster.changing && !out.json {
        eprintln!("membership change in flight: voters of the old and the new set are shown");
    }
    Ok(())
}
