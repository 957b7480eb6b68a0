//! `colonymesh colony ...` (server owner key) and `colonymesh user ...` (colony owner key).

use super::env::ClientEnv;
use super::output::Output;
use clap::Subcommand;
use proto::msgs::{ColonyMsg, ColonyNameMsg, EmptyMsg, UserMsg, UserNameMsg};
use proto::{Colony, Request, Statistics, User};

#[derive(Debug, Subcommand)]
pub(crate) enum ColonyCommand {
    /// Add a colony owned by the key with id --colonyid (signed with COLONIES_SERVER_PRVKEY).
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        colonyid: String,
    },
    /// List colonies (server owner).
    Ls,
    /// Show a colony (default: COLONIES_COLONY_NAME).
    Get {
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a colony and everything in it (server owner).
    Rm {
        #[arg(long)]
        name: String,
    },
    /// Process and executor counts of a colony.
    Stats {
        #[arg(long)]
        name: Option<String>,
    },
}

fn colony_rows(colonies: &[Colony]) -> Vec<Vec<String>> {
    colonies
        .iter()
        .map(|c| vec![c.name.clone(), c.colonyid.clone()])
        .collect()
}

pub(crate) async fn run_colony(
    command: ColonyCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let client = env.client()?;
    match command {
        ColonyCommand::Add { name, colonyid } => {
            let request = Request::AddColony(ColonyMsg {
                colony: Colony { colonyid, name },
            });
            let colony: Colony = client.call(&request, &env.server_prvkey()?).await?;
            out.show(
                &colony,
                &["NAME", "COLONYID"],
                colony_rows(std::slice::from_ref(&colony)),
            );
        }
        ColonyCommand::Ls => {
            let colonies: Vec<Colony> = client
                .call(&Request::GetColonies(EmptyMsg {}), &env.server_prvkey()?)
                .await?;
            out.show(&colonies, &["NAME", "COLONYID"], colony_rows(&colonies));
        }
        ColonyCommand::Get { name } => {
            let request = Request::GetColony(ColonyNameMsg {
                colonyname: env.colony(name)?,
            });
            let colony: Colony = client.call(&request, &env.prvkey()?).await?;
            out.show(
                &colony,
                &["NAME", "COLONYID"],
                colony_rows(std::slice::from_ref(&colony)),
            );
        }
        ColonyCommand::Rm { name } => {
            let request = Request::RemoveColony(ColonyNameMsg {
                colonyname: name.clone(),
            });
            let _: serde_json::Value = client.call(&request, &env.server_prvkey()?).await?;
            out.show(
                &serde_json::json!({ "removed": name }),
                &["REMOVED"],
                vec![vec![name.clone()]],
            );
        }
        ColonyCommand::Stats { name } => {
            let request = Request::GetColonyStats(ColonyNameMsg {
                colonyname: env.colony(name)?,
            });
            let s: Statistics = client.call(&request, &env.prvkey()?).await?;
            let rows = [
                ("executors", s.executors),
                ("waiting", s.waitingprocesses),
                ("running", s.runningprocesses),
                ("successful", s.successfulprocesses),
                ("failed", s.failedprocesses),
                ("cancelled", s.cancelledprocesses),
            ];
            let rows = rows
                .iter()
                .map(|(k, v)| vec![k.to_string(), v.to_string()])
                .collect();
            out.show(&s, &["WHAT", "COUNT"], rows);
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Register a user with id --id in the colony (signed with COLONIES_COLONY_PRVKEY).
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long, default_value = "")]
        phone: String,
    },
    /// List users of the colony.
    Ls,
    /// Remove a user (colony owner).
    Rm {
        #[arg(long)]
        name: String,
    },
}

fn user_rows(users: &[User]) -> Vec<Vec<String>> {
    users
        .iter()
        .map(|u| vec![u.name.clone(), u.userid.clone(), u.email.clone()])
        .collect()
}

pub(crate) async fn run_user(
    command: UserCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let client = env.client()?;
    let colonyname = env.colony(None)?;
    match command {
        UserCommand::Add {
            name,
            id,
            email,
            phone,
        } => {
            let user = User {
                colonyname,
                userid: id,
                name,
                email,
                phone,
            };
            let user: User = client
                .call(&Request::AddUser(UserMsg { user }), &env.colony_prvkey()?)
                .await?;
            out.show(
                &user,
                &["NAME", "USERID", "EMAIL"],
                user_rows(std::slice::from_ref(&user)),
            );
        }
        UserCommand::Ls => {
            let request = Request::GetUsers(ColonyNameMsg { colonyname });
            let users: Vec<User> = client.call(&request, &env.prvkey()?).await?;
            out.show(&users, &["NAME", "USERID", "EMAIL"], user_rows(&users));
        }
        UserCommand::Rm { name } => {
            let request = Request::RemoveUser(UserNameMsg {
                colonyname,
                name: name.clone(),
            });
            let _: serde_json::Value = client.call(&request, &env.colony_prvkey()?).await?;
            out.show(
                &serde_json::json!({ "removed": name }),
                &["REMOVED"],
                vec![vec![name.clone()]],
            );
        }
    }
    Ok(())
}
