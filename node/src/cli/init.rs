//! `colonymesh init` (create a mesh: root key, mesh id, server owner) and
//! `colonymesh token create` (a join token signed by the root).

use super::output::Output;
use crate::clock::{key_entropy, Clock, SystemClock};
use crate::trust;
use anyhow::Context as _;
use clap::{Args, Subcommand};
use proto::PrivateKey;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Directory for `mesh.json` and the secret `mesh-root.key`.
    #[arg(long)]
    dir: PathBuf,
    /// The ColonyOS server owner id; a new server key is made and printed when omitted.
    #[arg(long)]
    server_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a join token signed by the mesh root.
    Create {
        /// The mesh dir holding `mesh.json` and `mesh-root.key`.
        #[arg(long)]
        dir: PathBuf,
        /// How long the token stays valid: seconds, or a number with s, m, h or d.
        #[arg(long, alias = "ttl-seconds", default_value = "1h", value_parser = parse_ttl)]
        ttl: i64,
    },
}

pub(crate) fn init(args: InitArgs, out: &Output) -> anyhow::Result<()> {
    let (server_id, server_key) = match args.server_id {
        Some(id) => (id.to_ascii_lowercase(), None),
        None => {
            let key = PrivateKey::from_entropy(key_entropy());
            (key.id(), Some(key.to_hex()))
        }
    };
    let mesh_entropy: [u8; 16] = key_entropy()[..16].try_into().expect("16 of 32 bytes");
    let identity = trust::init(
        &args.dir,
        Some(server_id.clone()),
        key_entropy(),
        mesh_entropy,
    )?;
    let value = serde_json::json!({
        "mesh_id": identity.mesh_id,
        "dir": args.dir,
        "server_id": server_id,
        "server_prvkey": server_key,
    });
    let key_text = server_key.unwrap_or_else(|| "-".into());
    let row = vec![identity.mesh_id.clone(), server_id, key_text];
    out.show(
        &value,
        &["MESH_ID", "SERVER_ID", "SERVER_PRVKEY"],
        vec![row],
    );
    Ok(())
}

pub(crate) fn token(command: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Create {
        dir,
        ttl: ttl_seconds,
    } = command;
    let identity = trust::load_identity(&dir)?
        .with_context(|| format!("no mesh.json in {}; run colonymesh init", dir.display()))?;
    let root = trust::load_root_key(&dir, &identity)?
        .with_context(|| format!("no mesh-root.key in {}", dir.display()))?;
    let now = SystemClock.now_nanos() / 1_000_000_000;
    let nonce: [u8; 16] = key_entropy()[..16].try_into().expect("16 of 32 bytes");
    println!(
        "{}",
        root.token(&identity, now.saturating_add(ttl_seconds), nonce)
    );
    Ok(())
}

/// Parses `90`, `90s`, `15m`, `2h` or `7d` into seconds.
fn parse_ttl(text: &str) -> Result<i64, String> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let value: i64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {text:?}"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?}: use s, m, h or d"
            ))
        }
    };
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("duration {text:?} is too long"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ttl_units() {
        assert_eq!(super::parse_ttl("90"), Ok(90));
        assert_eq!(super::parse_ttl("15m"), Ok(900));
        assert_eq!(super::parse_ttl("2h"), Ok(7_200));
        assert!(super::parse_ttl("3w").unwrap_err().contains("unit"));
    }
}
