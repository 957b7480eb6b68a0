//! `colonymesh backup` and `colonymesh restore`: an online, consistent backup of a node's
//! state to a file (server owner key), and an empty data dir seeded from one, which then
//! starts a new mesh with that state (see `node::backup` for why it cannot rejoin the old one).

use super::env::ClientEnv;
use super::output::Output;
use crate::backup::{self, BackupMeta};
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// The backup file to write (replaced only once the whole backup arrived and checked out).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup file.
    #[arg(long)]
    from: PathBuf,
    /// The data dir to seed; it must hold no database yet.
    #[arg(long)]
    data_dir: PathBuf,
}

#[derive(serde::Serialize)]
struct Summary<'a> {
    file: String,
    bytes: u64,
    digest: String,
    #[serde(flatten)]
    meta: &'a BackupMeta,
}

fn show(out: &Output, summary: &Summary<'_>, what: &str) {
    let meta = summary.meta;
    out.show(
        summary,
        &["WHAT", "FILE", "NODE", "INDEX", "BYTES", "DIGEST"],
        vec![vec![
            what.to_string(),
            summary.file.clone(),
            meta.node.clone(),
            meta.applied_index.to_string(),
            summary.bytes.to_string(),
            summary.digest.clone(),
        ]],
    );
}

pub(crate) async fn backup(args: BackupArgs, env: &ClientEnv, out: &Output) -> anyhow::Result<()> {
    let key = env.server_prvkey()?;
    let client = env.client()?;
    let mut part = args.out.clone().into_os_string();
    part.push(".part");
    let part = PathBuf::from(part);
    let mut file = tokio::fs::File::create(&part)
        .await
        .with_context(|| format!("create {}", part.display()))?;
    let now = crate::clock::Clock::now_nanos(&crate::clock::SystemClock) / 1_000_000_000;
    let fetched = client.backup(&key, now, &mut file).await;
    let bytes = match fetched {
        Ok(bytes) => bytes,
        Err(error) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(error).context("take the backup");
        }
    };
    file.sync_all().await.context("sync the backup file")?;
    drop(file);
    let check = part.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let input = std::fs::File::open(&check)?;
        backup::inspect(input).map_err(anyhow::Error::from)
    })
    .await?;
    let (meta, digest) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(error).context("check the backup");
        }
    };
    tokio::fs::rename(&part, &args.out)
        .await
        .with_context(|| format!("rename {} to {}", part.display(), args.out.display()))?;
    let summary = Summary {
        file: args.out.display().to_string(),
        bytes,
        digest,
        meta: &meta,
    };
    show(out, &summary, "backup");
    Ok(())
}

pub(crate) async fn restore(args: RestoreArgs, out: &Output) -> anyhow::Result<()> {
    let (from, data_dir) = (args.from.clone(), args.data_dir.clone());
    let (meta, digest) =
        tokio::task::spawn_blocking(move || backup::restore_file(&data_dir, &from)).await??;
    let bytes = std::fs::metadata(&args.from).map_or(0, |m| m.len());
    let summary = Summary {
        file: args.from.display().to_string(),
        bytes,
        digest,
        meta: &meta,
    };
    show(out, &summary, "restored");
    if !out.json {
        eprintln!(
            "start it with `colonymesh node --data-dir {}` and no --join: it starts a new mesh \
             with this state; other nodes join it with tokens (colonymesh token create).",
            args.data_dir.display()
        );
    }
    Ok(())
}
