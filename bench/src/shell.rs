//! The shell scenario: real processes through the nodes' built-in shell executors. `count`
//! processes of the function `true` (`/bin/true` in the testnet's example config) are
//! submitted by concurrent clients spread over the nodes; the rate is processes closed
//! successfully per second, from the first submit until the colony's statistics count all of
//! them, so it includes submit, dispatch, a fork and exec per process, the log flush and the
//! close.

use crate::colony::Target;
use crate::stats::Record;
use anyhow::Context as _;
use proto::msgs::{ColonyNameMsg, SubmitMsg};
use proto::{FunctionSpec, Process, Request, Statistics};
use std::time::{Duration, Instant};

/// The executor type and function of the example config's shell executors.
const EXECUTOR_TYPE: &str = "shell";
const FUNCTION: &str = "true";
/// Longest the whole run may take.
const RUN_LIMIT: Duration = Duration::from_secs(600);

async fn successful(target: &Target) -> anyhow::Result<i64> {
    let request = Request::GetColonyStats(ColonyNameMsg {
        colonyname: target.colony.clone(),
    });
    let stats: Statistics = target.node(0).call(&request, &target.executor).await?;
    Ok(stats.successfulprocesses + stats.failedprocesses)
}

pub(crate) async fn run(target: &Target, count: usize, clients: usize) -> anyhow::Result<()> {
    let clients = clients.clamp(1, count.max(1));
    let before = successful(target).await?;
    let started = Instant::now();
    let mut submitters = Vec::new();
    for c in 0..clients {
        let me = target.clone();
        let share = count / clients + usize::from(c < count % clients);
        submitters.push(tokio::spawn(async move {
            let node = me.node(c).clone();
            let mut spec = FunctionSpec {
                funcname: FUNCTION.into(),
                maxwaittime: -1,
                maxexectime: 60,
                maxretries: 0,
                ..FunctionSpec::default()
            };
            spec.conditions.colonyname = me.colony.clone();
            spec.conditions.executortype = EXECUTOR_TYPE.into();
            let submit = Request::Submit(SubmitMsg { spec });
            for _ in 0..share {
                let _: Process = node.call(&submit, &me.executor).await?;
            }
            anyhow::Ok(())
        }));
    }
    for submitter in submitters {
        submitter.await.context("submitter")??;
    }
    let submitted = started.elapsed();
    let wait = async {
        loop {
            let done = successful(target).await? - before;
            if done >= count as i64 {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(RUN_LIMIT, wait)
        .await
        .context("the shell processes did not all close within the limit")??;
    let elapsed = started.elapsed();
    let failed = {
        let request = Request::GetColonyStats(ColonyNameMsg {
            colonyname: target.colony.clone(),
        });
        let stats: Statistics = target.node(0).call(&request, &target.executor).await?;
        stats.failedprocesses
    };
    let mut record = Record::new(&target.system, "shell-true", clients);
    record.rate = count as f64 / elapsed.as_secs_f64();
    record.extra.insert("processes".into(), count.into());
    record.extra.insert(
        "submit_s".into(),
        ((submitted.as_secs_f64() * 100.0).round() / 100.0).into(),
    );
    record.extra.insert(
        "total_s".into(),
        ((elapsed.as_secs_f64() * 100.0).round() / 100.0).into(),
    );
    record
        .extra
        .insert("failed_in_colony".into(), failed.into());
    record.emit()
}
