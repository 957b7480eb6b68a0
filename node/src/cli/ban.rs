//! `colonymesh ban ls|rm`: the sources the node in the environment refuses after repeated
//! failed authentications (server owner key). Bans are per node and kept in memory.

use super::env::ClientEnv;
use super::output::Output;
use clap::Subcommand;
use proto::mesh::BansReply;
use proto::msgs::{EmptyMsg, RemoveBanMsg};
use proto::Request;

#[derive(Debug, Subcommand)]
pub(crate) enum BanCommand {
    /// List the sources this node bans now.
    Ls,
    /// Lift the bans of a source address (on the API and p2p sides).
    Rm {
        /// The banned address, as `ban ls` shows it.
        source: String,
    },
}

pub(crate) async fn run(command: BanCommand, env: &ClientEnv, out: &Output) -> anyhow::Result<()> {
    let key = env.server_prvkey()?;
    let request = match &command {
        BanCommand::Ls => Request::GetBans(EmptyMsg {}),
        BanCommand::Rm { source } => Request::RemoveBan(RemoveBanMsg {
            source: source.clone(),
        }),
    };
    let reply: BansReply = env.client()?.call(&request, &key).await?;
    if let BanCommand::Rm { source } = &command {
        if reply.lifted == 0 {
            anyhow::bail!("{source} is not banned on {}", reply.servedby);
        }
        if !out.json {
            println!(
                "lifted {} ban(s) of {source} on {}",
                reply.lifted, reply.servedby
            );
            return Ok(());
        }
    }
    let rows = reply
        .bans
        .iter()
        .map(|b| {
            vec![
                b.source.clone(),
                b.side.clone(),
                b.failures.to_string(),
                format!("{} s", b.remainingseconds),
            ]
        })
        .collect();
    out.show(&reply, &["SOURCE", "SIDE", "FAILURES", "REMAINING"], rows);
    Ok(())
}
