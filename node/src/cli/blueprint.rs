//! `colonymesh blueprint ...`: blueprint definitions (kinds, colony owner) and blueprints
//! (desired state of things, reconciled by the executors their kind names).

use super::env::ClientEnv;
use super::input;
use super::output::{time, Output};
use clap::Subcommand;
use proto::blueprint::{Blueprint, BlueprintDefinition, BlueprintHistory};
use proto::msgs::{
    AddBlueprintDefinitionMsg, BlueprintMsg, ColonyNameMsg, GetBlueprintHistoryMsg,
    GetBlueprintsMsg, NamespaceNameMsg, ReconcileBlueprintMsg, UpdateBlueprintMsg,
    UpdateBlueprintStatusMsg, UserNameMsg,
};
use proto::{Process, Request};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub(crate) enum BlueprintCommand {
    /// Blueprint definitions: the kinds of blueprints and their reconcilers.
    #[command(subcommand)]
    Definition(DefinitionCommand),
    /// Add a blueprint from a JSON file (colony defaults to the env's).
    Add {
        #[arg(long)]
        spec: PathBuf,
    },
    /// List the colony's blueprints.
    Ls {
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        location: Option<String>,
    },
    /// Show a blueprint.
    Get {
        #[arg(long)]
        name: String,
    },
    /// Replace a blueprint's spec from a JSON file (--force: a new generation even if the
    /// spec is unchanged).
    Update {
        #[arg(long)]
        spec: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Remove a blueprint.
    Rm {
        #[arg(long)]
        name: String,
    },
    /// Spec changes of a blueprint, newest first.
    History {
        #[arg(long)]
        id: String,
        /// Most entries (0: all).
        #[arg(long, default_value_t = 0)]
        limit: i64,
    },
    /// Submit a reconcile process for a blueprint now.
    Reconcile {
        #[arg(long)]
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// Set a blueprint's observed status (a JSON object, given inline).
    Status {
        #[arg(long)]
        name: String,
        #[arg(long, value_name = "JSON")]
        status: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DefinitionCommand {
    /// Add a definition from a JSON file (colony owner).
    Add {
        #[arg(long)]
        spec: PathBuf,
    },
    /// List the colony's definitions.
    Ls,
    /// Show a definition.
    Get {
        #[arg(long)]
        name: String,
    },
    /// Remove a definition no blueprint uses (colony owner).
    Rm {
        #[arg(long)]
        name: String,
    },
}

const DEFINITION_HEADERS: [&str; 5] = ["NAME", "KIND", "EXECUTORTYPE", "FUNCTION", "ID"];

fn definition_rows(definitions: &[BlueprintDefinition]) -> Vec<Vec<String>> {
    definitions
        .iter()
        .map(|d| {
            vec![
                d.metadata.name.clone(),
                d.spec.names.kind.clone(),
                d.spec.handler.executor_type.clone(),
                d.spec.handler.function_name.clone(),
                d.blueprintdefinitionid.clone(),
            ]
        })
        .collect()
}

const HEADERS: [&str; 6] = [
    "NAME",
    "KIND",
    "LOCATION",
    "GENERATION",
    "UPDATED",
    "BLUEPRINTID",
];

fn rows(blueprints: &[Blueprint]) -> Vec<Vec<String>> {
    blueprints
        .iter()
        .map(|b| {
            vec![
                b.metadata.name.clone(),
                b.kind.clone(),
                b.metadata.locationname.clone(),
                b.metadata.generation.to_string(),
                time(b.metadata.updated_at),
                b.blueprintid.clone(),
            ]
        })
        .collect()
}

/// A blueprint from `path`, in the env's colony unless it names one.
fn read_blueprint(path: &Path, env: &ClientEnv) -> anyhow::Result<Blueprint> {
    let mut blueprint: Blueprint = input::read_json(path, "blueprint")?;
    if blueprint.metadata.colonyname.is_empty() {
        blueprint.metadata.colonyname = env.colony(None)?;
    }
    Ok(blueprint)
}

pub(crate) async fn run(
    command: BlueprintCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let client = env.client()?;
    let key = || env.prvkey();
    let named = |name: String| -> anyhow::Result<NamespaceNameMsg> {
        Ok(NamespaceNameMsg {
            namespace: env.colony(None)?,
            name,
        })
    };
    let blueprint: Blueprint = match command {
        BlueprintCommand::Definition(command) => return definition(command, env, out).await,
        BlueprintCommand::Add { spec } => {
            let blueprint = read_blueprint(&spec, env)?;
            let request = Request::AddBlueprint(BlueprintMsg { blueprint });
            client.call(&request, &key()?).await?
        }
        BlueprintCommand::Ls { kind, location } => {
            let request = Request::GetBlueprints(GetBlueprintsMsg {
                namespace: env.colony(None)?,
                kind: kind.unwrap_or_default(),
                locationname: location.unwrap_or_default(),
            });
            let blueprints: Vec<Blueprint> = client.call(&request, &key()?).await?;
            out.show(&blueprints, &HEADERS, rows(&blueprints));
            return Ok(());
        }
        BlueprintCommand::Get { name } => {
            let request = Request::GetBlueprint(named(name)?);
            client.call(&request, &key()?).await?
        }
        BlueprintCommand::Update { spec, force } => {
            let request = Request::UpdateBlueprint(UpdateBlueprintMsg {
                blueprint: read_blueprint(&spec, env)?,
                forcegeneration: force,
            });
            client.call(&request, &key()?).await?
        }
        BlueprintCommand::Rm { name } => {
            let request = Request::RemoveBlueprint(named(name.clone())?);
            let _: Value = client.call(&request, &key()?).await?;
            out.done("name", &name, "removed");
            return Ok(());
        }
        BlueprintCommand::History { id, limit } => {
            let request = Request::GetBlueprintHistory(GetBlueprintHistoryMsg {
                blueprintid: id,
                limit,
            });
            let history: Vec<BlueprintHistory> = client.call(&request, &key()?).await?;
            let rows = history
                .iter()
                .map(|h| {
                    vec![
                        h.generation.to_string(),
                        h.changetype.clone(),
                        time(h.timestamp),
                        h.changedby.clone(),
                    ]
                })
                .collect();
            let headers = ["GENERATION", "CHANGE", "TIME", "CHANGEDBY"];
            out.show(&history, &headers, rows);
            return Ok(());
        }
        BlueprintCommand::Reconcile { name, force } => {
            let request = Request::ReconcileBlueprint(ReconcileBlueprintMsg {
                namespace: env.colony(None)?,
                name,
                force,
            });
            let process: Process = client.call(&request, &key()?).await?;
            let rows = vec![vec![
                process.processid.clone(),
                process.spec.funcname.clone(),
            ]];
            out.show(&process, &["PROCESSID", "FUNCNAME"], rows);
            return Ok(());
        }
        BlueprintCommand::Status { name, status } => {
            let status: Map<String, Value> = input::parse_flag(&status, "--status")?;
            let request = Request::UpdateBlueprintStatus(UpdateBlueprintStatusMsg {
                colonyname: env.colony(None)?,
                blueprintname: name.clone(),
                status,
            });
            let _: Value = client.call(&request, &key()?).await?;
            out.done("name", &name, "status updated");
            return Ok(());
        }
    };
    out.show(&blueprint, &HEADERS, rows(std::slice::from_ref(&blueprint)));
    Ok(())
}

async fn definition(
    command: DefinitionCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let client = env.client()?;
    let colonyname = env.colony(None)?;
    let definition: BlueprintDefinition = match command {
        DefinitionCommand::Add { spec } => {
            let mut definition: BlueprintDefinition =
                input::read_json(&spec, "blueprint definition")?;
            if definition.metadata.colonyname.is_empty() {
                definition.metadata.colonyname = colonyname;
            }
            let request = Request::AddBlueprintDefinition(AddBlueprintDefinitionMsg {
                blueprintdefinition: definition,
            });
            client.call(&request, &env.colony_prvkey()?).await?
        }
        DefinitionCommand::Ls => {
            let request = Request::GetBlueprintDefinitions(ColonyNameMsg { colonyname });
            let definitions: Vec<BlueprintDefinition> =
                client.call(&request, &env.prvkey()?).await?;
            out.show(
                &definitions,
                &DEFINITION_HEADERS,
                definition_rows(&definitions),
            );
            return Ok(());
        }
        DefinitionCommand::Get { name } => {
            let request = Request::GetBlueprintDefinition(UserNameMsg { colonyname, name });
            client.call(&request, &env.prvkey()?).await?
        }
        DefinitionCommand::Rm { name } => {
            let request = Request::RemoveBlueprintDefinition(NamespaceNameMsg {
                namespace: colonyname,
                name: name.clone(),
            });
            let _: Value = client.call(&request, &env.colony_prvkey()?).await?;
            out.done("name", &name, "removed");
            return Ok(());
        }
    };
    out.show(
        &definition,
        &DEFINITION_HEADERS,
        definition_rows(std::slice::from_ref(&definition)),
    );
    Ok(())
}
