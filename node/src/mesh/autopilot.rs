//! The leader's autopilot: keeps the voter count at its target with healthy voters spread over
//! sites. `plan` is pure (members, health, settings in; one change out) and unit-tested; `run`
//! gathers the inputs each period and carries the change out through raft.
//!
//! Rules, in order: remove a non-voter silent past `node_dead`; replace a voter silent past
//! `voter_dead` with a stable learner; promote a stable learner while voters are below target.
//! A learner is stable once it has been healthy (recently heard, caught up) for
//! `stabilization`; among stable learners, sites with fewer voters win, then the least lag.

use crate::clock::{self, Clock};
use crate::config::MeshConfig;
use crate::net;
use crate::raft::{NodeId, RaftNode};
use crate::shutdown::Signal;
use proto::command::{Command, Op};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Longest the autopilot waits for one membership change to commit.
const CHANGE_WAIT: Duration = Duration::from_secs(10);
/// A node is healthy when heard within this long (pings run every second).
const HEARD_WITHIN: Duration = Duration::from_secs(3);

/// The autopilot's thresholds.
#[derive(Clone, Debug)]
pub struct Settings {
    pub voters_target: usize,
    pub lag_max: u64,
    pub stabilization: Duration,
    pub voter_dead: Duration,
    pub node_dead: Duration,
}

impl Settings {
    pub fn from_config(config: &MeshConfig) -> Settings {
        Settings {
            voters_target: config.voters_target,
            lag_max: config.learner_lag_max,
            stabilization: Duration::from_millis(config.stabilization_ms),
            voter_dead: Duration::from_millis(config.voter_dead_ms),
            node_dead: Duration::from_millis(config.node_dead_ms),
        }
    }
}

/// One member as the leader sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub id: NodeId,
    pub peer_id: String,
    pub site: String,
    pub voter: bool,
    /// Log entries behind the leader.
    pub lag: u64,
    /// Time since the leader last heard from it (zero for the leader itself).
    pub silent_for: Duration,
}

/// A membership change the autopilot asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Promote(NodeId),
    Replace { dead: NodeId, with: NodeId },
    Remove(NodeId),
}

fn healthy(member: &Member, settings: &Settings) -> bool {
    member.silent_for < HEARD_WITHIN && member.lag <= settings.lag_max
}

/// The next change, if any. `healthy_for` says how long each member has been healthy.
pub fn plan(
    members: &[Member],
    healthy_for: &HashMap<NodeId, Duration>,
    settings: &Settings,
) -> Option<Change> {
    if let Some(dead) = members
        .iter()
        .find(|m| !m.voter && m.silent_for >= settings.node_dead)
    {
        return Some(Change::Remove(dead.id));
    }
    let voters: Vec<&Member> = members.iter().filter(|m| m.voter).collect();
    let voters_at = |site: &str| voters.iter().filter(|v| v.site == site).count();
    let best_learner = members
        .iter()
        .filter(|m| !m.voter && healthy(m, settings))
        .filter(|m| {
            healthy_for
                .get(&m.id)
                .is_some_and(|d| *d >= settings.stabilization)
        })
        .min_by_key(|m| (voters_at(&m.site), m.lag, m.id));
    let dead_voter = voters.iter().find(|v| v.silent_for >= settings.voter_dead);
    match (dead_voter, best_learner) {
        (Some(dead), Some(with)) => Some(Change::Replace {
            dead: dead.id,
            with: with.id,
        }),
        (_, Some(learner)) if voters.len() < settings.voters_target => {
            Some(Change::Promote(learner.id))
        }
        _ => None,
    }
}

/// Runs the autopilot on whichever node leads, every `autopilot_ms`, until `stop`.
pub async fn run(
    raft: RaftNode,
    net: net::Client,
    clock: Arc<dyn Clock>,
    config: MeshConfig,
    stop: Signal,
) {
    let settings = Settings::from_config(&config);
    let mut ticker = stop.every(Duration::from_millis(config.autopilot_ms));
    let started = clock::monotonic();
    let mut healthy_since: HashMap<NodeId, std::time::Instant> = HashMap::new();
    while ticker.tick().await {
        let Some(view) = raft.leader_view() else {
            healthy_since.clear();
            continue;
        };
        let Ok(last_seen) = net.last_seen().await else {
            return;
        };
        let now = clock::monotonic();
        let members: Vec<Member> = view
            .into_iter()
            .map(|m| {
                let silent_for = match (m.id == raft.node_id(), last_seen.get(&m.peer_id)) {
                    (true, _) => Duration::ZERO,
                    (false, Some(seen)) => now.saturating_duration_since(*seen),
                    (false, None) => now.saturating_duration_since(started),
                };
                Member {
                    id: m.id,
                    peer_id: m.peer_id,
                    site: m.site,
                    voter: m.voter,
                    lag: m.lag,
                    silent_for,
                }
            })
            .collect();
        healthy_since.retain(|id, _| members.iter().any(|m| m.id == *id && healthy(m, &settings)));
        for member in members.iter().filter(|m| healthy(m, &settings)) {
            healthy_since.entry(member.id).or_insert(now);
        }
        let healthy_for = healthy_since
            .iter()
            .map(|(id, t)| (*id, now.saturating_duration_since(*t)))
            .collect();
        if let Some(change) = plan(&members, &healthy_for, &settings) {
            tracing::info!(?change, "autopilot");
            // Bounded: without a quorum a membership change never commits.
            let change_done = carry_out(&raft, clock.as_ref(), &members, &change);
            match tokio::time::timeout(CHANGE_WAIT, change_done).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(?change, "failed to change membership: {error}"),
                Err(_) => tracing::warn!(?change, "membership change not committed in time"),
            }
        }
    }
}

async fn carry_out(
    raft: &RaftNode,
    clock: &dyn Clock,
    members: &[Member],
    change: &Change,
) -> Result<(), String> {
    match change {
        Change::Promote(id) => raft.promote(*id).await,
        Change::Replace { dead, with } => raft.replace_voter(*dead, *with).await,
        Change::Remove(id) => {
            raft.remove_node(*id).await?;
            let peer_id = members
                .iter()
                .find(|m| m.id == *id)
                .map(|m| m.peer_id.clone());
            let Some(peer_id) = peer_id else {
                return Ok(());
            };
            let command = Command {
                now_nanos: clock.now_nanos(),
                request_id: clock.request_id(),
                caller_id: String::new(),
                op: Op::RevokeNode { peer_id },
            };
            raft.propose(command)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            voters_target: 3,
            lag_max: 10,
            stabilization: Duration::from_secs(5),
            voter_dead: Duration::from_secs(15),
            node_dead: Duration::from_secs(600),
        }
    }

    fn member(id: NodeId, site: &str, voter: bool, silent_secs: u64) -> Member {
        let silent_for = Duration::from_secs(silent_secs);
        Member {
            id,
            peer_id: format!("p{id}"),
            site: site.into(),
            voter,
            lag: 0,
            silent_for,
        }
    }

    fn stable(ids: &[NodeId]) -> HashMap<NodeId, Duration> {
        ids.iter()
            .map(|id| (*id, Duration::from_secs(60)))
            .collect()
    }

    #[test]
    fn promotes_stable_learners_preferring_empty_sites() {
        let members = [
            member(1, "a", true, 0),
            member(2, "a", false, 0),
            member(3, "b", false, 0),
        ];
        assert_eq!(
            plan(&members, &stable(&[2, 3]), &settings()),
            Some(Change::Promote(3))
        );
        assert_eq!(
            plan(&members, &HashMap::new(), &settings()),
            None,
            "not stable yet"
        );
    }

    #[test]
    fn keeps_target_and_replaces_dead_voters() {
        let full = [
            member(1, "a", true, 0),
            member(2, "b", true, 0),
            member(3, "c", true, 0),
            member(4, "a", false, 0),
        ];
        assert_eq!(plan(&full, &stable(&[4]), &settings()), None, "target met");
        let mut dead = full.clone();
        dead[2].silent_for = Duration::from_secs(20);
        assert_eq!(
            plan(&dead, &stable(&[4]), &settings()),
            Some(Change::Replace { dead: 3, with: 4 })
        );
        let mut lagging = dead.clone();
        lagging[3].lag = 11;
        assert_eq!(
            plan(&lagging, &stable(&[4]), &settings()),
            None,
            "no healthy replacement"
        );
    }

    #[test]
    fn removes_long_dead_non_voters() {
        let members = [member(1, "a", true, 0), member(2, "b", false, 700)];
        assert_eq!(
            plan(&members, &HashMap::new(), &settings()),
            Some(Change::Remove(2))
        );
    }
}
