//! `colonymesh key new|id`.

use super::output::Output;
use crate::clock::key_entropy;
use anyhow::Context as _;
use clap::Subcommand;
use proto::PrivateKey;
use std::collections::HashMap;

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Generate a new private key and print it with its id.
    New,
    /// Print the id of a private key (default: COLONIES_PRVKEY).
    Id {
        #[arg(long)]
        prvkey: Option<String>,
    },
}

pub(crate) fn run(
    command: KeyCommand,
    vars: &HashMap<String, String>,
    out: &Output,
) -> anyhow::Result<()> {
    let key = match command {
        KeyCommand::New => PrivateKey::from_entropy(key_entropy()),
        KeyCommand::Id { prvkey } => {
            let text = prvkey
                .or_else(|| vars.get("COLONIES_PRVKEY").cloned())
                .context("give --prvkey or set COLONIES_PRVKEY")?;
            PrivateKey::from_hex(&text).context("parse private key")?
        }
    };
    let value = serde_json::json!({ "prvkey": key.to_hex(), "id": key.id() });
    out.show(
        &value,
        &["PRVKEY", "ID"],
        vec![vec![key.to_hex(), key.id()]],
    );
    Ok(())
}
