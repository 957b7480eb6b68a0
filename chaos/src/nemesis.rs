//! The nemesis: a seeded schedule of faults against the mesh, one at a time, each held for a
//! while and then healed, with quiet gaps in between. The log it keeps goes into the summary.

use crate::mesh::Mesh;
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::Rng as _;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The kinds of fault, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL of the leader, restarted after the hold.
    KillLeader,
    /// SIGKILL of a random node, restarted after the hold.
    Kill,
    /// SIGSTOP of a random node (the leader half the time), SIGCONT after the hold.
    Pause,
    /// SIGTERM (graceful stop, a leader steps down) and start again at once.
    Restart,
    /// A random minority (the leader's side half the time) cut from the rest.
    Partition,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::KillLeader,
        Fault::Kill,
        Fault::Pause,
        Fault::Restart,
        Fault::Partition,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::KillLeader => "kill-leader",
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Restart => "restart",
            Fault::Partition => "partition",
        }
    }

    pub fn parse(name: &str) -> Result<Fault, String> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!("unknown fault {name:?}; known: {}", known.join(", "))
            })
    }
}

/// Injects faults from `faults` until `until`; returns each fault with a line describing it.
pub async fn run(
    mesh: &mut Mesh,
    faults: &[Fault],
    rng: &mut StdRng,
    until: Instant,
    started: Instant,
) -> anyhow::Result<Vec<(Fault, String)>> {
    let mut log = Vec::new();
    let at = |started: Instant| format!("{:>7.1}s", started.elapsed().as_secs_f64());
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1000..3000))).await;
        if Instant::now() >= until || faults.is_empty() {
            break;
        }
        let fault = *faults.choose(rng).expect("faults is not empty");
        let hold = Duration::from_millis(rng.gen_range(1000..6000));
        let count = mesh.nodes.len();
        let random = rng.gen_range(0..count);
        let leader = mesh.leader().await;
        let began = at(started);
        let line = match fault {
            Fault::KillLeader | Fault::Kill => {
                let victim = match fault {
                    Fault::KillLeader => leader.unwrap_or(random),
                    _ => random,
                };
                mesh.kill(victim).await;
                tokio::time::sleep(hold).await;
                mesh.start_node(victim)?;
                format!("kill -9 {} for {hold:?}", mesh.nodes[victim].name)
            }
            Fault::Pause => {
                let victim = match rng.gen_bool(0.5) {
                    true => leader.unwrap_or(random),
                    false => random,
                };
                mesh.pause(victim);
                tokio::time::sleep(hold).await;
                mesh.resume(victim);
                format!("pause {} for {hold:?}", mesh.nodes[victim].name)
            }
            Fault::Restart => {
                mesh.stop(random).await;
                mesh.start_node(random)?;
                format!("restart {}", mesh.nodes[random].name)
            }
            Fault::Partition => {
                let minority = (count - 1) / 2;
                let mut order: Vec<usize> = (0..count).collect();
                order.shuffle(rng);
                if let (Some(leader), true) = (leader, rng.gen_bool(0.5)) {
                    order.retain(|&i| i != leader);
                    order.insert(0, leader);
                }
                let side: BTreeSet<usize> = order.into_iter().take(minority.max(1)).collect();
                mesh.partition(&side)?;
                tokio::time::sleep(hold).await;
                mesh.heal_all()?;
                let names: Vec<&str> = side.iter().map(|&i| mesh.nodes[i].name.as_str()).collect();
                format!("partition {names:?} from the rest for {hold:?}")
            }
        };
        let line = format!("{began} {}: {line}", fault.name());
        println!("nemesis: {line}");
        log.push((fault, line));
    }
    Ok(log)
}
