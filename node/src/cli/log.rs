//! `colonymesh log get|search|add`: process and executor log lines; `log get --follow`
//! keeps printing new lines until the process has finished.

use super::env::ClientEnv;
use super::output::{nanos, Output};
use super::wait::Backoff;
use crate::client::Client;
use clap::Subcommand;
use proto::msgs::{AddExecutorLogMsg, AddLogMsg, GetLogsMsg, ProcessIdMsg, SearchLogsMsg};
use proto::process::process_state as ps;
use proto::{Log, PrivateKey, Process, Request};

#[derive(Debug, Subcommand)]
pub(crate) enum LogCommand {
    /// Print the log lines of a process (or of an executor), oldest first.
    #[command(group(clap::ArgGroup::new("source").required(true).args(["processid", "executor"])))]
    Get {
        #[arg(long)]
        processid: Option<String>,
        /// An executor's own log instead of a process's.
        #[arg(long)]
        executor: Option<String>,
        /// Most lines per read (at most 500).
        #[arg(long, default_value_t = 100)]
        count: i64,
        /// Only lines after this time (Unix nanoseconds).
        #[arg(long, default_value_t = 0)]
        since: i64,
        /// The last --count lines instead of the first.
        #[arg(long)]
        latest: bool,
        /// Keep printing new lines until the process has finished (an executor's log:
        /// until interrupted). With --json, one JSON object per line.
        #[arg(long)]
        follow: bool,
    },
    /// Search the colony's log lines of the last --days days for --text.
    Search {
        #[arg(long)]
        text: String,
        #[arg(long, default_value_t = 1)]
        days: i64,
        #[arg(long, default_value_t = 20)]
        count: i64,
    },
    /// Add a line to the log of a process running on the caller (or to the caller's own log).
    #[command(group(clap::ArgGroup::new("target").required(true).args(["processid", "executor"])))]
    Add {
        #[arg(long)]
        processid: Option<String>,
        /// The caller's executor name, to write its own log.
        #[arg(long)]
        executor: Option<String>,
        #[arg(long)]
        message: String,
    },
}

/// Where `log get` reads from, and how.
struct Reader<'a> {
    client: &'a Client,
    key: &'a PrivateKey,
    msg: GetLogsMsg,
}

impl Reader<'_> {
    async fn read(&self, since: i64, latest: bool) -> anyhow::Result<Vec<Log>> {
        let request = Request::GetLogs(GetLogsMsg {
            since,
            latest,
            ..self.msg.clone()
        });
        Ok(self.client.call(&request, self.key).await?)
    }

    /// True once the process is closed (never for an executor's log).
    async fn finished(&self) -> anyhow::Result<bool> {
        if self.msg.processid.is_empty() {
            return Ok(false);
        }
        let request = Request::GetProcess(ProcessIdMsg {
            processid: self.msg.processid.clone(),
        });
        let process: Process = self.client.call(&request, self.key).await?;
        Ok(ps::is_terminal(process.state))
    }
}

/// Prints lines as `log get --follow` does: the messages, or one JSON object per line.
fn print_lines(out: &Output, logs: &[Log]) {
    for log in logs {
        if out.json {
            let line = serde_json::to_string(log).expect("log lines always serialize");
            super::output::print(&format!("{line}\n"));
        } else if log.message.ends_with('\n') {
            super::output::print(&log.message);
        } else {
            super::output::print(&format!("{}\n", log.message));
        }
    }
}

/// Prints what is there, then polls for lines after the last one printed until the process
/// has finished: the state is read before the lines, so nothing logged before the close is
/// missed.
async fn follow(
    reader: &Reader<'_>,
    out: &Output,
    mut since: i64,
    latest: bool,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::new();
    let mut first = latest;
    loop {
        let finished = reader.finished().await?;
        let logs = reader.read(since, std::mem::take(&mut first)).await?;
        let Some(last) = logs.last() else {
            if finished {
                return Ok(());
            }
            backoff.pause().await;
            continue;
        };
        since = last.timestamp;
        print_lines(out, &logs);
        backoff.reset();
    }
}

pub(crate) async fn run(command: LogCommand, env: &ClientEnv, out: &Output) -> anyhow::Result<()> {
    let client = env.client()?;
    let key = env.prvkey()?;
    let colonyname = env.colony(None)?;
    match command {
        LogCommand::Get {
            processid,
            executor,
            count,
            since,
            latest,
            follow: following,
        } => {
            let msg = GetLogsMsg {
                colonyname,
                processid: processid.unwrap_or_default(),
                executorname: executor.unwrap_or_default(),
                count,
                ..GetLogsMsg::default()
            };
            let reader = Reader {
                client: &client,
                key: &key,
                msg,
            };
            if following {
                return follow(&reader, out, since, latest).await;
            }
            let logs = reader.read(since, latest).await?;
            if out.json {
                out.show(&logs, &[], Vec::new());
            } else {
                print_lines(out, &logs);
            }
        }
        LogCommand::Search { text, days, count } => {
            let request = Request::SearchLogs(SearchLogsMsg {
                colonyname,
                text,
                days,
                count,
            });
            let logs: Vec<Log> = client.call(&request, &key).await?;
            let rows = logs
                .iter()
                .map(|l| {
                    vec![
                        nanos(l.timestamp),
                        l.processid.clone(),
                        l.executorname.clone(),
                        l.message.trim_end().to_string(),
                    ]
                })
                .collect();
            out.show(&logs, &["TIME", "PROCESSID", "EXECUTOR", "MESSAGE"], rows);
        }
        LogCommand::Add {
            processid,
            executor,
            message,
        } => {
            let (request, key_name, id) = match (processid, executor) {
                (Some(processid), _) => {
                    let request = Request::AddLog(AddLogMsg {
                        processid: processid.clone(),
                        message,
                    });
                    (request, "processid", processid)
                }
                (None, executor) => {
                    let executorname = env.executor_name(executor)?;
                    let request = Request::AddExecutorLog(AddExecutorLogMsg {
                        colonyname,
                        executorname: executorname.clone(),
                        message,
                    });
                    (request, "executorname", executorname)
                }
            };
            let _: serde_json::Value = client.call(&request, &key).await?;
            out.done(key_name, &id, "logged");
        }
    }
    Ok(())
}
