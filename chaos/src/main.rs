//! `colonymesh-chaos`: starts a local mesh of real nodes, runs the workload while the nemesis
//! injects faults, heals everything, waits for the nodes to converge and checks the history.
//! Prints a summary; exits non-zero with the seed and the replay command when a check fails.
//!
//! ```text
//!   mesh::start --> workload (history) + nemesis (faults) --> heal --> quiet period
//!     --> converge (equal state digests) --> final state --> checker::check --> summary
//! ```

use anyhow::Context as _;
use chaos::checker;
use chaos::history::{self, History, Kind, Outcome};
use chaos::mesh::{Mesh, Options};
use chaos::nemesis::{self, Fault};
use chaos::workload::{self, Sizes, Workload};
use clap::Parser;
use node::client::Client;
use proto::mesh::{ClusterReply, StateDigestReply};
use proto::msgs::{ColonyNameMsg, EmptyMsg, ProcessIdMsg};
use proto::{PrivateKey, Process, Request, Statistics};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long the nodes may take to agree on one state after the faults end.
const CONVERGE_WAIT: Duration = Duration::from_secs(90);
/// How long the workload keeps running after the last heal.
const QUIET: Duration = Duration::from_secs(10);
/// How long one read of the final state keeps retrying a busy (429), unavailable (503) or
/// unreachable node before the run ends without a verdict.
const READ_PATIENCE: Duration = Duration::from_secs(60);
/// First pause between such retries; it doubles up to `READ_BACKOFF_MAX`.
const READ_BACKOFF_FIRST: Duration = Duration::from_millis(50);
const READ_BACKOFF_MAX: Duration = Duration::from_secs(2);

#[derive(Debug, Parser)]
#[command(about = "Fault injection against a local Colonymesh mesh, with a history checker")]
struct Args {
    /// Seed of the fault schedule and the workload (random when omitted).
    #[arg(long)]
    seed: Option<u64>,
    /// How long faults are injected, in seconds.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Nodes in the mesh (3 voters; the rest learners).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Faults to inject, comma-separated: kill-leader,kill,pause,restart,partition.
    #[arg(long, default_value = "kill-leader,kill,pause,restart,partition")]
    faults: String,
    /// Run the nodes on loopback instead of network namespaces (no root; no partitions).
    #[arg(long)]
    loopback: bool,
    /// The colonymesh binary.
    #[arg(long)]
    binary: PathBuf,
    /// Where node data, logs and the history go (kept when a check fails).
    #[arg(long)]
    dir: PathBuf,
    /// Loopback only: first port (node i uses base+10i .. base+10i+2).
    #[arg(long, default_value_t = 7500)]
    base_port: u16,
    /// Client tasks: submitters, executors, readers.
    #[arg(long, default_value_t = 3)]
    submitters: usize,
    #[arg(long, default_value_t = 4)]
    executors: usize,
    #[arg(long, default_value_t = 2)]
    readers: usize,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        // Not a verdict: the harness could not finish (exit 2, distinct from violations).
        Err(error) => {
            println!("checker: NO VERDICT, the harness failed: {error:#}");
            eprintln!("chaos: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().gen());
    let mut faults = BTreeSet::new();
    for name in args.faults.split(',').filter(|s| !s.is_empty()) {
        faults.insert(Fault::parse(name.trim()).map_err(anyhow::Error::msg)?);
    }
    if args.loopback && faults.remove(&Fault::Partition) {
        println!("chaos: --loopback: partitions need network namespaces; skipping them");
    }
    let faults: Vec<Fault> = faults.into_iter().collect();
    let names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
    let replay = format!(
        "scripts/chaos --seed {seed} --seconds {} --nodes {} --faults {}{}",
        args.seconds,
        args.nodes,
        names.join(","),
        if args.loopback { " --loopback" } else { "" }
    );
    println!("chaos: seed {seed}; replay with: {replay}");
    let mut rng = StdRng::seed_from_u64(seed);
    let options = Options {
        binary: args.binary.clone(),
        dir: args.dir.clone(),
        nodes: args.nodes,
        netns: !args.loopback,
        base_port: args.base_port,
    };
    let server = PrivateKey::from_entropy(rng.gen());
    std::fs::create_dir_all(&args.dir)?;
    // For post-mortems: `colonymesh mesh status` with COLONIES_SERVER_PRVKEY set to it.
    std::fs::write(args.dir.join("server.key"), server.to_hex())?;
    let mut mesh = Mesh::start(&options, server.clone()).await?;
    println!("chaos: {} nodes up in {}", args.nodes, args.dir.display());
    let started = Instant::now();
    let history = History::new();
    let targets = mesh
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.client()))
        .collect();
    let sizes = Sizes {
        submitters: args.submitters,
        executors: args.executors,
        readers: args.readers,
    };
    let workload = Workload::provision(history.clone(), targets, &server, sizes, seed).await?;
    let tasks = workload.spawn(sizes, seed);

    let until = Instant::now() + Duration::from_secs(args.seconds);
    let fault_log = nemesis::run(&mut mesh, &faults, &mut rng, until, started).await;
    mesh.heal_all()?;
    let healed_ms = history.now_ms();
    let fault_log = fault_log?;
    println!("chaos: faults healed at {healed_ms} ms; quiet period of {QUIET:?}");
    tokio::time::sleep(QUIET).await;
    workload.stop();
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }

    let digests = converge(&mesh, &server).await;
    let events = history.events();
    let fin = final_state(&mesh, &workload, &events, digests, healed_ms).await?;
    let violations = checker::check(&events, &fin);
    history::write_jsonl(&args.dir.join("history.jsonl"), &events)?;
    let counts = checker::counts(&events);
    mesh.shutdown().await;

    println!("--- chaos summary (seed {seed})");
    println!(
        "nodes {}, faults {} over {} s: {}",
        args.nodes,
        fault_log.len(),
        args.seconds,
        names.join(",")
    );
    for kind in &faults {
        let n = fault_log.iter().filter(|(fault, _)| fault == kind).count();
        println!("  {:<12} {n}", kind.name());
    }
    println!(
        "requests {}: submits ok {} (unknown {}), assigns ok {}, closes ok {}, \
         rogue closes refused {}, reads ok {}, unknown outcomes {}",
        events.len(),
        counts.submits_ok,
        counts.submits_unknown,
        counts.assigns_ok,
        counts.closes_ok,
        counts.rogue_refused,
        counts.reads_ok,
        counts.unknown_outcomes
    );
    let (_, index, digest) = fin.digests.first().cloned().unwrap_or_default();
    println!(
        "final: {} processes, {} checked by id; {} nodes agree at applied index {index} \
         (digest {})",
        fin.total,
        fin.processes.len(),
        fin.digests.len(),
        &digest[..digest.len().min(16)]
    );
    if violations.is_empty() {
        println!("checker: OK, no violation");
        if let Err(error) = std::fs::remove_dir_all(&args.dir) {
            eprintln!("chaos: could not remove {}: {error}", args.dir.display());
        }
        return Ok(true);
    }
    println!("checker: {} violations", violations.len());
    for violation in &violations {
        println!("  VIOLATION {violation}");
    }
    println!("fault log:");
    for (_, line) in &fault_log {
        println!("  {line}");
    }
    println!("history and node logs kept in {}", args.dir.display());
    println!("replay with: {replay}");
    Ok(false)
}

/// Waits until every node reports the same applied index (cheap `getclustermsg` polls), then
/// reads every node's state digest; retries the digests while the indexes still differ.
async fn converge(mesh: &Mesh, server: &PrivateKey) -> Vec<(String, u64, String)> {
    let deadline = Instant::now() + CONVERGE_WAIT;
    let mut last = Vec::new();
    while Instant::now() < deadline {
        let mut applied = Vec::new();
        for node in &mesh.nodes {
            let client = node.client();
            let call = client.call::<ClusterReply>(&Request::GetCluster(EmptyMsg {}), server);
            if let Ok(Ok(view)) = tokio::time::timeout(Duration::from_secs(5), call).await {
                applied.push(view.appliedindex);
            }
        }
        let agreed = applied.len() == mesh.nodes.len() && applied.iter().all(|a| *a == applied[0]);
        if !agreed && !last.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        // All at once: each node reads its digest from a snapshot taken when the request
        // arrives, so concurrent requests land between the same two log entries even while
        // the leader's tick keeps expiring old request records (once a second for a while).
        let calls: Vec<_> = mesh
            .nodes
            .iter()
            .map(|node| {
                let (name, client, server) = (node.name.clone(), node.client(), server.clone());
                tokio::spawn(async move {
                    let request = Request::GetStateDigest(EmptyMsg {});
                    let call = client.call::<StateDigestReply>(&request, &server);
                    match tokio::time::timeout(Duration::from_secs(30), call).await {
                        Ok(Ok(reply)) => Some((name, reply.appliedindex, reply.digest)),
                        _ => None,
                    }
                })
            })
            .collect();
        let mut digests = Vec::new();
        for call in calls {
            if let Ok(Some(digest)) = call.await {
                digests.push(digest);
            }
        }
        let agreed = digests.len() == mesh.nodes.len()
            && digests.iter().all(|(_, index, _)| *index == digests[0].1);
        last = digests;
        if agreed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

/// `call` on `clients[*reader]` as a patient client makes it: when that node is busy (429),
/// unavailable (503) or not reachable, the next node is asked (as a client with several
/// addresses would) after a pause that doubles, for at most `READ_PATIENCE`; any other answer,
/// or the last error once patience runs out, is returned. `reader` is left at the node asked
/// last. A node that never catches up still fails the check: its state digest is missing or
/// differs.
async fn patiently<'c, T, F, Fut>(
    clients: &'c [Client],
    reader: &mut usize,
    mut call: F,
) -> Result<T, node::client::ClientError>
where
    F: FnMut(&'c Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, node::client::ClientError>>,
{
    use node::client::ClientError;
    let deadline = Instant::now() + READ_PATIENCE;
    let mut pause = READ_BACKOFF_FIRST;
    loop {
        let answer = call(&clients[*reader]).await;
        match answer {
            Err(
                ClientError::Api {
                    status: 429 | 503, ..
                }
                | ClientError::Transport { .. },
            ) if Instant::now() + pause < deadline => {
                *reader = (*reader + 1) % clients.len();
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(READ_BACKOFF_MAX);
            }
            result => return result,
        }
    }
}

/// Every process the history mentions, read from node 1 (another node while it cannot answer)
/// once the nodes agree.
async fn final_state(
    mesh: &Mesh,
    workload: &Workload,
    events: &[history::Event],
    digests: Vec<(String, u64, String)>,
    healed_ms: u64,
) -> anyhow::Result<checker::Final> {
    let clients: Vec<_> = mesh.nodes.iter().map(|n| n.client()).collect();
    // Starts at node 1; a node that cannot answer hands the reads to the next.
    let mut reader = 0;
    let key = workload.client_key();
    let ids: BTreeSet<&str> = events
        .iter()
        .filter(|e| e.outcome == Outcome::Ok || e.kind == Kind::Close)
        .filter_map(|e| e.processid.as_deref())
        .collect();
    let mut fin = checker::Final {
        digests,
        nodes: mesh.nodes.len(),
        healed_ms,
        ..checker::Final::default()
    };
    for id in ids {
        let request = Request::GetProcess(ProcessIdMsg {
            processid: id.to_string(),
        });
        let read = patiently(&clients, &mut reader, |c| c.call::<Process>(&request, key)).await;
        match read {
            Ok(process) => {
                fin.processes
                    .insert(id.to_string(), workload.seen(&process));
            }
            Err(node::client::ClientError::Api { status: 404, .. }) => {}
            Err(error) => return Err(error).context(format!("read final state of {id}")),
        }
    }
    let request = Request::GetColonyStats(ColonyNameMsg {
        colonyname: workload::COLONY.into(),
    });
    let stats: Statistics = patiently(&clients, &mut reader, |c| c.call(&request, key))
        .await
        .context("read the colony's statistics")?;
    fin.total = [
        stats.waitingprocesses,
        stats.runningprocesses,
        stats.successfulprocesses,
        stats.failedprocesses,
    ]
    .iter()
    .map(|&n| n.max(0) as u64)
    .sum();
    Ok(fin)
}
