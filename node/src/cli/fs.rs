//! `colonymesh fs ...`: ColonyFS metadata (labels, files and their revisions, snapshots).
//! The bytes live in S3; nothing here transfers them.

use super::env::ClientEnv;
use super::output::{time, Output};
use clap::Subcommand;
use proto::file::{File, FileData, Label, Snapshot};
use proto::msgs::{
    ColonyNameMsg, CreateSnapshotMsg, FileMsg, GetFileLabelsMsg, GetFilesMsg, SnapshotMsg,
};
use proto::Request;

#[derive(Debug, Subcommand)]
pub(crate) enum FsCommand {
    /// Labels (folders) of the colony.
    #[command(subcommand)]
    Label(LabelCommand),
    /// List the newest revision of every file under a label.
    Ls {
        #[arg(long)]
        label: String,
    },
    /// Show a file: its newest revision, or every revision with --all.
    Info {
        #[arg(long)]
        label: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        all: bool,
    },
    /// Remove a file revision by id, or a file (every revision) by label and name.
    #[command(group(clap::ArgGroup::new("file").required(true).args(["id", "label"])))]
    Rm {
        #[arg(long)]
        id: Option<String>,
        #[arg(long, requires = "name")]
        label: Option<String>,
        #[arg(long, requires = "label")]
        name: Option<String>,
    },
    /// Snapshots of labels.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum LabelCommand {
    /// List labels (under --name, or exactly --name with --exact) with their file counts.
    Ls {
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        exact: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SnapshotCommand {
    /// Snapshot the newest revisions of a label's files under a name.
    Create {
        #[arg(long)]
        label: String,
        #[arg(long)]
        name: String,
    },
    /// List the colony's snapshots.
    Ls,
    /// Show a snapshot, by id or by name.
    #[command(group(clap::ArgGroup::new("by").required(true).args(["id", "name"])))]
    Info {
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a snapshot, by id or by name.
    #[command(group(clap::ArgGroup::new("by").required(true).args(["id", "name"])))]
    Rm {
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove every snapshot of the colony.
    Rmall,
}

const FILE_HEADERS: [&str; 6] = ["FILEID", "LABEL", "NAME", "SIZE", "REVISION", "ADDED"];

fn file_rows(files: &[File]) -> Vec<Vec<String>> {
    files
        .iter()
        .map(|f| {
            vec![
                f.fileid.clone(),
                f.label.clone(),
                f.name.clone(),
                f.size.to_string(),
                f.sequencenr.to_string(),
                time(f.added),
            ]
        })
        .collect()
}

const SNAPSHOT_HEADERS: [&str; 5] = ["SNAPSHOTID", "NAME", "LABEL", "FILES", "ADDED"];

fn snapshot_rows(snapshots: &[Snapshot]) -> Vec<Vec<String>> {
    snapshots
        .iter()
        .map(|s| {
            vec![
                s.snapshotid.clone(),
                s.name.clone(),
                s.label.clone(),
                s.fileids.len().to_string(),
                time(s.added),
            ]
        })
        .collect()
}

pub(crate) async fn run(command: FsCommand, env: &ClientEnv, out: &Output) -> anyhow::Result<()> {
    let client = env.client()?;
    let key = env.prvkey()?;
    let colonyname = env.colony(None)?;
    match command {
        FsCommand::Label(LabelCommand::Ls { name, exact }) => {
            let request = Request::GetFileLabels(GetFileLabelsMsg {
                colonyname,
                name,
                exact,
            });
            let labels: Vec<Label> = client.call(&request, &key).await?;
            let rows = labels
                .iter()
                .map(|l| vec![l.name.clone(), l.files.to_string()])
                .collect();
            out.show(&labels, &["LABEL", "FILES"], rows);
        }
        FsCommand::Ls { label } => {
            let request = Request::GetFiles(GetFilesMsg { colonyname, label });
            let files: Vec<FileData> = client.call(&request, &key).await?;
            let rows = files
                .iter()
                .map(|f| {
                    let size = f.size.to_string();
                    vec![
                        f.name.clone(),
                        size,
                        f.checksum.clone(),
                        f.s3filename.clone(),
                    ]
                })
                .collect();
            out.show(&files, &["NAME", "SIZE", "CHECKSUM", "S3 OBJECT"], rows);
        }
        FsCommand::Info { label, name, all } => {
            let request = Request::GetFile(FileMsg {
                colonyname,
                label,
                name,
                latest: !all,
                ..FileMsg::default()
            });
            let files: Vec<File> = client.call(&request, &key).await?;
            out.show(&files, &FILE_HEADERS, file_rows(&files));
        }
        FsCommand::Rm { id, label, name } => {
            let what = match (&id, &label, &name) {
                (Some(id), _, _) => id.clone(),
                (None, Some(label), Some(name)) => format!("{label}/{name}"),
                _ => anyhow::bail!("give --id ID, or --label LABEL and --name NAME"),
            };
            let request = Request::RemoveFile(FileMsg {
                colonyname,
                fileid: id.unwrap_or_default(),
                label: label.unwrap_or_default(),
                name: name.unwrap_or_default(),
                latest: false,
            });
            let _: serde_json::Value = client.call(&request, &key).await?;
            out.done("file", &what, "removed");
        }
        FsCommand::Snapshot(command) => snapshot(command, env, out, colonyname).await?,
    }
    Ok(())
}

async fn snapshot(
    command: SnapshotCommand,
    env: &ClientEnv,
    out: &Output,
    colonyname: String,
) -> anyhow::Result<()> {
    let client = env.client()?;
    let key = env.prvkey()?;
    let by = |snapshotid: Option<String>, name: Option<String>| SnapshotMsg {
        colonyname: colonyname.clone(),
        snapshotid: snapshotid.unwrap_or_default(),
        name: name.unwrap_or_default(),
    };
    let snapshot: Snapshot = match command {
        SnapshotCommand::Create { label, name } => {
            let request = Request::CreateSnapshot(CreateSnapshotMsg {
                colonyname: colonyname.clone(),
                label,
                name,
            });
            client.call(&request, &key).await?
        }
        SnapshotCommand::Ls => {
            let request = Request::GetSnapshots(ColonyNameMsg {
                colonyname: colonyname.clone(),
            });
            let snapshots: Vec<Snapshot> = client.call(&request, &key).await?;
            out.show(&snapshots, &SNAPSHOT_HEADERS, snapshot_rows(&snapshots));
            return Ok(());
        }
        SnapshotCommand::Info { id, name } => {
            client
                .call(&Request::GetSnapshot(by(id, name)), &key)
                .await?
        }
        SnapshotCommand::Rm { id, name } => {
            let what = id.clone().or_else(|| name.clone()).unwrap_or_default();
            let request = Request::RemoveSnapshot(by(id, name));
            let _: serde_json::Value = client.call(&request, &key).await?;
            out.done("snapshot", &what, "removed");
            return Ok(());
        }
        SnapshotCommand::Rmall => {
            let request = Request::RemoveAllSnapshots(ColonyNameMsg {
                colonyname: colonyname.clone(),
            });
            let _: serde_json::Value = client.call(&request, &key).await?;
            out.done("colonyname", &colonyname, "snapshots removed");
            return Ok(());
        }
    };
    out.show(
        &snapshot,
        &SNAPSHOT_HEADERS,
        snapshot_rows(std::slice::from_ref(&snapshot)),
    );
    Ok(())
}
