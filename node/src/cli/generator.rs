//! `colonymesh generator add|pack|ls|get|rm`: workflows started once enough arguments have
//! been packed (or a timeout passed since the first).

use super::env::ClientEnv;
use super::input;
use super::output::{time, Output};
use clap::Subcommand;
use proto::msgs::{
    AddGeneratorMsg, ColonyCountMsg, GeneratorIdMsg, PackGeneratorMsg, ResolveGeneratorMsg,
};
use proto::{Generator, Request, WorkflowSpec};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(crate) enum GeneratorCommand {
    /// Add a generator that starts the workflow in --spec for every --trigger packed args.
    Add {
        #[arg(long)]
        name: String,
        /// A WorkflowSpec JSON file.
        #[arg(long)]
        spec: PathBuf,
        /// Packed arguments that start a workflow.
        #[arg(long)]
        trigger: i64,
        /// Seconds after the first pack to start with what is packed (0: never).
        #[arg(long, default_value_t = 0)]
        timeout: i64,
    },
    /// Pack an argument into a generator.
    Pack {
        #[arg(long)]
        id: String,
        #[arg(long)]
        arg: String,
    },
    /// List the colony's generators.
    Ls {
        #[arg(long, default_value_t = 100)]
        count: i64,
    },
    /// Show a generator, by id or by name.
    #[command(group(clap::ArgGroup::new("by").required(true).args(["id", "name"])))]
    Get {
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a generator.
    Rm {
        #[arg(long)]
        id: String,
    },
}

const HEADERS: [&str; 6] = [
    "GENERATORID",
    "NAME",
    "TRIGGER",
    "TIMEOUT",
    "PACKED",
    "LASTRUN",
];

fn rows(generators: &[Generator]) -> Vec<Vec<String>> {
    generators
        .iter()
        .map(|g| {
            vec![
                g.generatorid.clone(),
                g.name.clone(),
                g.trigger.to_string(),
                g.timeout.to_string(),
                g.queuesize.to_string(),
                time(g.lastrun),
            ]
        })
        .collect()
}

pub(crate) async fn run(
    command: GeneratorCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let client = env.client()?;
    let key = env.prvkey()?;
    let generator: Generator = match command {
        GeneratorCommand::Add {
            name,
            spec,
            trigger,
            timeout,
        } => {
            let workflowspec = input::read_text(&spec, "workflow spec")?;
            input::parse_text::<WorkflowSpec>(&workflowspec, &spec, "workflow spec")?;
            let generator = Generator {
                colonyname: env.colony(None)?,
                name,
                workflowspec,
                trigger,
                timeout,
                ..Generator::default()
            };
            let request = Request::AddGenerator(AddGeneratorMsg { generator });
            client.call(&request, &key).await?
        }
        GeneratorCommand::Pack { id, arg } => {
            let request = Request::PackGenerator(PackGeneratorMsg {
                generatorid: id.clone(),
                arg,
            });
            let _: serde_json::Value = client.call(&request, &key).await?;
            out.done("generatorid", &id, "packed");
            return Ok(());
        }
        GeneratorCommand::Ls { count } => {
            let request = Request::GetGenerators(ColonyCountMsg {
                colonyname: env.colony(None)?,
                count,
            });
            let generators: Vec<Generator> = client.call(&request, &key).await?;
            out.show(&generators, &HEADERS, rows(&generators));
            return Ok(());
        }
        GeneratorCommand::Get { id: Some(id), .. } => {
            client
                .call(&Request::GetGenerator(id_msg(id)), &key)
                .await?
        }
        GeneratorCommand::Get { id: None, name } => {
            let request = Request::ResolveGenerator(ResolveGeneratorMsg {
                colonyname: env.colony(None)?,
                generatorname: name.unwrap_or_default(),
            });
            client.call(&request, &key).await?
        }
        GeneratorCommand::Rm { id } => {
            let request = Request::RemoveGenerator(id_msg(id.clone()));
            let _: serde_json::Value = client.call(&request, &key).await?;
            out.done("generatorid", &id, "removed");
            return Ok(());
        }
    };
    out.show(&generator, &HEADERS, rows(std::slice::from_ref(&generator)));
    Ok(())
}

fn id_msg(generatorid: String) -> GeneratorIdMsg {
    GeneratorIdMsg {
        generatorid,
        all: false,
    }
}
