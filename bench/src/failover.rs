//! Failover: a lifecycle loop through surviving nodes, retrying failures, while the script
//! kills the leader. Reports the time from the kill to the assignment of the first round begun
//! after it, and the longest gap between assignments.

use crate::colony::Target;
use crate::stats::Record;
use anyhow::Context as _;
use proto::Process;
use std::time::{Duration, Instant};

fn unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

pub(crate) async fn run(
    target: &Target,
    seconds: u64,
    kill_file: Option<&str>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut assigned_at = Vec::new();
    let mut failures = 0u64;
    // When each successful round began and when its assignment came back.
    let mut rounds: Vec<(u128, u128)> = Vec::new();
    let (submitter, executor) = (target.node(0), target.node(target.nodes.len() - 1));
    while start.elapsed() < Duration::from_secs(seconds) {
        let began = unix_nanos();
        let round = async {
            let _: Process = submitter
                .call(&target.submit(&target.executortype), &target.executor)
                .await?;
            let p = executor
                .assign(&target.assign(5), &target.executor, 5)
                .await?;
            let at = unix_nanos();
            let _: serde_json::Value = executor
                .call(&Target::close(p.processid), &target.executor)
                .await?;
            anyhow::Ok(at)
        };
        match round.await {
            Ok(at) => {
                assigned_at.push(at);
                rounds.push((began, at));
            }
            Err(_) => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let longest = assigned_at
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(0);
    let mut record = Record::new(&target.system, "failover", 1);
    if let Some(Ok(text)) = kill_file.map(std::fs::read_to_string) {
        let killed: u128 = text.trim().parse().context("parse kill time")?;
        // A round begun before the kill may have committed before it and only answered
        // after: count the first round begun after the kill.
        let next = rounds
            .iter()
            .find(|(began, _)| *began > killed)
            .map(|(_, at)| at)
            .context("no assignment after the kill")?;
        let seconds = (next - killed) as f64 / 1e9;
        record.extra.insert(
            "kill_to_assign_s".into(),
            ((seconds * 1000.0).round() / 1000.0).into(),
        );
    }
    record.extra.insert(
        "longest_gap_s".into(),
        ((longest as f64 / 1e6).round() / 1000.0).into(),
    );
    record
        .extra
        .insert("lifecycles".into(), assigned_at.len().into());
    record
        .extra
        .insert("failed_attempts".into(), failures.into());
    record.emit()
}
