//! The workflow scenario: how long a 10-process workflow takes from submit to its last
//! process closed, with no-op executors (a root, 8 parallel children, a final join: 3 levels,
//! so each run has 3 dispatch rounds and 10 assignments).

use crate::colony::Target;
use crate::stats::{Latency, Record};
use anyhow::Context as _;
use proto::msgs::{SubmitWorkflowMsg, SubscribeProcessMsg};
use proto::process::process_state as ps;
use proto::{FunctionSpec, ProcessGraph, Request, WorkflowSpec};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Parallel children between the root and the join.
const FAN_OUT: usize = 8;
/// Concurrent no-op executor loops.
const EXECUTORS: usize = 8;

fn workflow(target: &Target) -> WorkflowSpec {
    let node = |name: String, parents: Vec<String>| {
        let mut spec = FunctionSpec {
            nodename: name.clone(),
            funcname: name,
            maxwaittime: -1,
            maxexectime: -1,
            maxretries: -1,
            ..FunctionSpec::default()
        };
        spec.conditions.executortype = target.executortype.clone();
        spec.conditions.dependencies = parents;
        spec
    };
    let middle: Vec<String> = (0..FAN_OUT).map(|i| format!("work{i}")).collect();
    let mut specs = vec![node("root".into(), vec![])];
    specs.extend(middle.iter().map(|m| node(m.clone(), vec!["root".into()])));
    specs.push(node("join".into(), middle));
    WorkflowSpec {
        colonyname: target.colony.clone(),
        functionspecs: specs,
    }
}

/// Runs `count` workflows one after another while no-op executors assign and close.
pub(crate) async fn run(target: &Target, count: usize) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut executors = Vec::new();
    for i in 0..EXECUTORS {
        let (me, stop) = (target.clone(), stop.clone());
        executors.push(tokio::spawn(async move {
            let node = me.node(i).clone();
            while !stop.load(Ordering::Relaxed) {
                // Short long-polls, so the loop notices the end of the run.
                let Ok(process) = node.assign(&me.assign(1), &me.executor, 1).await else {
                    continue;
                };
                let close = Target::close(process.processid);
                let _ = node.call::<serde_json::Value>(&close, &me.executor).await;
            }
        }));
    }
    let mut samples = Vec::with_capacity(count);
    let submit = Request::SubmitWorkflow(SubmitWorkflowMsg {
        spec: workflow(target),
    });
    for round in 0..count {
        let node = target.node(round);
        let start = Instant::now();
        let graph: ProcessGraph = node.call(&submit, &target.executor).await?;
        let join = graph.processids.last().context("workflow has processes")?;
        let watch = Request::SubscribeProcess(SubscribeProcessMsg {
            colonyname: target.colony.clone(),
            processid: join.clone(),
            state: ps::SUCCESS,
            timeout: 60,
            ..SubscribeProcessMsg::default()
        });
        let mut frames = node.subscribe(&watch, &target.executor).await?;
        let done = tokio::time::timeout(Duration::from_secs(60), frames.next()).await;
        match done {
            Ok(Some(Ok(_))) => samples.push(start.elapsed()),
            other => anyhow::bail!(
                "workflow {} did not finish: {other:?}",
                graph.processgraphid
            ),
        }
    }
    stop.store(true, Ordering::Relaxed);
    for executor in executors {
        executor.await?;
    }
    let mut record = Record::new(&target.system, "workflow-10", EXECUTORS);
    record.rate = samples.len() as f64 / samples.iter().map(Duration::as_secs_f64).sum::<f64>();
    record.latency = Latency::of(samples);
    record.emit()
}
