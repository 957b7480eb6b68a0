//! Prometheus metrics: the one place that imports `prometheus`. Each node owns one `Metrics`
//! (its own registry, so nodes sharing a test process never mix figures). Events are
//! counted where they happen through the methods below; figures that already live elsewhere
//! (raft's term and indexes, process counts, mesh members) are read when `/metrics` is
//! scraped and handed to `render` as a `Snapshot`.
//!
//! Names follow Prometheus conventions: a `colonymesh_` prefix, base units (seconds),
//! `_total` on counters.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::time::Duration;

/// Buckets for API latency: half a millisecond up to a minute (assign long-polls).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets for commands per raft entry (the batcher takes at most 256).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// A node's metrics. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Metrics {
    registry: Registry,
    api_requests: IntCounterVec,
    api_seconds: HistogramVec,
    proposals: IntCounter,
    batch_commands: Histogram,
    assign_wait: Histogram,
    auth_failures: IntCounterVec,
    bans: IntCounterVec,
    bans_active: IntGaugeVec,
    rate_limited: IntCounterVec,
    gauges: Gauges,
}

/// Gauges set from a `Snapshot` at each scrape.
struct Gauges {
    term: IntGauge,
    role: IntGaugeVec,
    last_log: IntGauge,
    commit: IntGauge,
    applied: IntGauge,
    lag: IntGaugeVec,
    processes: IntGaugeVec,
    workflows: IntGaugeVec,
    executors: IntGaugeVec,
    members: IntGaugeVec,
    connected_peers: IntGauge,
    waiters: IntGauge,
    build: IntGaugeVec,
}

/// Figures read at scrape time from the parts of the node that own them.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub term: u64,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub role: &'static str,
    pub last_log_index: u64,
    /// The highest index known committed (on a follower: the highest applied).
    pub commit_index: u64,
    pub applied_index: u64,
    /// On the leader: entries each member (by node name or id) is behind.
    pub lag: Vec<(String, u64)>,
    /// Processes by state (`waiting`, `running`, `successful`, `failed`, `cancelled`).
    pub processes: Vec<(&'static str, u64)>,
    /// Workflows by state, as for processes.
    pub workflows: Vec<(&'static str, u64)>,
    /// Executors by kind (`registered`, `active`, `unregistered`).
    pub executors: Vec<(&'static str, u64)>,
    pub members_up: u64,
    pub members_down: u64,
    /// Peers with a live libp2p connection.
    pub connected_peers: u64,
    /// Assign long-polls waiting on this node.
    pub waiters: u64,
    /// Sources banned now, by side (`api`, `p2p`).
    pub bans_active: Vec<(&'static str, u64)>,
}

const ROLES: [&str; 4] = ["leader", "follower", "candidate", "learner"];

fn registered<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, m: M) -> M {
    // Registration fails only on a duplicate or inconsistent name: a programming error that
    // the unit tests below would catch.
    registry
        .register(Box::new(m.clone()))
        .expect("metric names are unique and valid");
    m
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let m = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
    registered(registry, m)
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let m = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
    registered(registry, m)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    registered(registry, IntGauge::new(name, help).expect("valid gauge"))
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    registered(
        registry,
        Histogram::with_opts(opts).expect("valid histogram"),
    )
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let api_seconds = HistogramVec::new(
            HistogramOpts::new(
                "colonymesh_api_request_duration_seconds",
                "Time to answer an API request, by message type.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["type"],
        )
        .expect("valid histogram");
        let gauges = Gauges {
            term: gauge(&r, "colonymesh_raft_term", "Current raft term."),
            role: gauge_vec(
                &r,
                "colonymesh_raft_role",
                "1 for this node's raft role, 0 for the others.",
                &["role"],
            ),
            last_log: gauge(
                &r,
                "colonymesh_raft_last_log_index",
                "Index of the last entry in this node's raft log.",
            ),
            commit: gauge(
                &r,
                "colonymesh_raft_commit_index",
                "Highest raft index known committed (a follower reports its applied index).",
            ),
            applied: gauge(
                &r,
                "colonymesh_raft_applied_index",
                "Highest raft index applied to this node's state.",
            ),
            lag: gauge_vec(
                &r,
                "colonymesh_raft_replication_lag_entries",
                "On the leader: log entries each member is behind.",
                &["node"],
            ),
            processes: gauge_vec(
                &r,
                "colonymesh_processes",
                "Processes in the mesh by state.",
                &["state"],
            ),
            workflows: gauge_vec(
                &r,
                "colonymesh_workflows",
                "Workflows in the mesh by state.",
                &["state"],
            ),
            executors: gauge_vec(
                &r,
                "colonymesh_executors",
                "Executors in the mesh: registered, active (heard from lately), unregistered.",
                &["kind"],
            ),
            members: gauge_vec(
                &r,
                "colonymesh_mesh_members",
                "Mesh members by health as seen from this node's gossip.",
                &["health"],
            ),
            connected_peers: gauge(
                &r,
                "colonymesh_gossip_peers",
                "Peers this node has heard from on the mesh network lately.",
            ),
            waiters: gauge(
                &r,
                "colonymesh_assign_waiters",
                "Assign long-polls waiting on this node.",
            ),
            build: gauge_vec(
                &r,
                "colonymesh_build_info",
                "Always 1; the version is a label.",
                &["version"],
            ),
        };
        Metrics {
            api_requests: counter_vec(
                &r,
                "colonymesh_api_requests_total",
                "API requests answered, by message type and HTTP status.",
                &["type", "status"],
            ),
            api_seconds: registered(&r, api_seconds),
            proposals: registered(
                &r,
                IntCounter::new(
                    "colonymesh_raft_proposals_total",
                    "Commands this node proposed to raft as leader.",
                )
                .expect("valid counter"),
            ),
            batch_commands: histogram(
                &r,
                "colonymesh_raft_batch_commands",
                "Commands per raft entry proposed by this node.",
                BATCH_BUCKETS,
            ),
            assign_wait: histogram(
                &r,
                "colonymesh_assign_wait_seconds",
                "How long an assign waited before it got a process.",
                LATENCY_BUCKETS,
            ),
            auth_failures: counter_vec(
                &r,
                "colonymesh_auth_failures_total",
                "Failed authentications (bad signatures, unknown identities), by side.",
                &["side"],
            ),
            bans: counter_vec(
                &r,
                "colonymesh_bans_total",
                "Sources banned for repeated failed authentications, by side.",
                &["side"],
            ),
            bans_active: gauge_vec(
                &r,
                "colonymesh_bans_active",
                "Sources banned now, by side.",
                &["side"],
            ),
            rate_limited: counter_vec(
                &r,
                "colonymesh_rate_limited_total",
                "Requests refused by a limit (per identity: rate, long_polls; per source: \
                 anonymous), by limit.",
                &["limit"],
            ),
            gauges,
            registry: r,
        }
    }

    /// One answered API request of message type `msgtype` (empty when the envelope could not
    /// be read) with HTTP `status`, after `elapsed`.
    pub fn api_request(&self, msgtype: &str, status: u16, elapsed: Duration) {
        let msgtype = if msgtype.is_empty() {
            "invalid"
        } else {
            msgtype
        };
        self.api_requests
            .with_label_values(&[msgtype, &status.to_string()])
            .inc();
        self.api_seconds
            .with_label_values(&[msgtype])
            .observe(elapsed.as_secs_f64());
    }

    /// A raft entry of `commands` commands proposed by this node.
    pub fn proposed(&self, commands: usize) {
        self.proposals.inc_by(commands as u64);
        self.batch_commands.observe(commands as f64);
    }

    /// An assign that got a process after waiting `waited`.
    pub fn assigned(&self, waited: Duration) {
        self.assign_wait.observe(waited.as_secs_f64());
    }

    /// A failed authentication on `side` (`api` or `p2p`).
    pub fn auth_failed(&self, side: &str) {
        self.auth_failures.with_label_values(&[side]).inc();
    }

    /// A source banned on `side`.
    pub fn banned(&self, side: &str) {
        self.bans.with_label_values(&[side]).inc();
    }

    /// A request refused by `limit` (`rate`, `long_polls` per identity; `anonymous` per source).
    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited.with_label_values(&[limit]).inc();
    }

    /// Everything in the Prometheus text format, with the gauges set from `snapshot`.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let g = &self.gauges;
        g.term.set(clamp(snapshot.term));
        for role in ROLES {
            g.role
                .with_label_values(&[role])
                .set(i64::from(role == snapshot.role));
        }
        g.last_log.set(clamp(snapshot.last_log_index));
        g.commit.set(clamp(snapshot.commit_index));
        g.applied.set(clamp(snapshot.applied_index));
        g.lag.reset();
        for (node, lag) in &snapshot.lag {
            g.lag.with_label_values(&[node]).set(clamp(*lag));
        }
        set_all(&g.processes, &snapshot.processes);
        set_all(&g.workflows, &snapshot.workflows);
        set_all(&g.executors, &snapshot.executors);
        set_all(&self.bans_active, &snapshot.bans_active);
        g.members
            .with_label_values(&["up"])
            .set(clamp(snapshot.members_up));
        g.members
            .with_label_values(&["down"])
            .set(clamp(snapshot.members_down));
        g.connected_peers.set(clamp(snapshot.connected_peers));
        g.waiters.set(clamp(snapshot.waiters));
        g.build
            .with_label_values(&[crate::api::BUILD_VERSION])
            .set(1);
        let mut out = Vec::new();
        // Encoding to a Vec fails only on invalid metric families, which registration
        // rules out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The text format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn set_all(vec: &IntGaugeVec, values: &[(&'static str, u64)]) {
    for (label, value) in values {
        vec.with_label_values(&[label]).set(clamp(*value));
    }
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `colonymesh_...` names in a PromQL expression.
    fn metric_names(expr: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = expr;
        while let Some(at) = rest.find("colonymesh_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.push(tail[..end].to_string());
            rest = &tail[end..];
        }
        names
    }

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn events_and_snapshot_figures_are_rendered() {
        let metrics = Metrics::new();
        metrics.api_request("submitfuncspecmsg", 200, Duration::from_millis(3));
        metrics.api_request("submitfuncspecmsg", 200, Duration::from_millis(4));
        metrics.api_request("", 400, Duration::from_millis(1));
        metrics.proposed(3);
        metrics.proposed(1);
        metrics.assigned(Duration::from_millis(20));
        metrics.auth_failed("api");
        metrics.banned("api");
        metrics.rate_limited("rate");
        let snapshot = Snapshot {
            term: 7,
            role: "leader",
            last_log_index: 120,
            commit_index: 119,
            applied_index: 118,
            lag: vec![("n2".into(), 4)],
            processes: vec![("waiting", 5), ("running", 2)],
            workflows: vec![("waiting", 1)],
            executors: vec![("registered", 3)],
            bans_active: vec![("api", 1)],
            members_up: 3,
            ..Snapshot::default()
        };
        let text = metrics.render(&snapshot);
        let want = [
            "colonymesh_api_requests_total{status=\"200\",type=\"submitfuncspecmsg\"} 2",
            "colonymesh_api_requests_total{status=\"400\",type=\"invalid\"} 1",
            "colonymesh_api_request_duration_seconds_count{type=\"submitfuncspecmsg\"} 2",
            "colonymesh_raft_proposals_total 4",
            "colonymesh_raft_batch_commands_sum 4",
            "colonymesh_assign_wait_seconds_count 1",
            "colonymesh_auth_failures_total{side=\"api\"} 1",
            "colonymesh_bans_total{side=\"api\"} 1",
            "colonymesh_bans_active{side=\"api\"} 1",
            "colonymesh_raft_term 7",
            "colonymesh_raft_role{role=\"leader\"} 1",
            "colonymesh_raft_role{role=\"follower\"} 0",
            "colonymesh_raft_commit_index 119",
            "colonymesh_raft_applied_index 118",
            "colonymesh_raft_replication_lag_entries{node=\"n2\"} 4",
            "colonymesh_processes{state=\"waiting\"} 5",
            "colonymesh_mesh_members{health=\"up\"} 3",
        ];
        for want in want {
            assert!(
                text.lines().any(|l| l == want),
                "missing {want:?} in:\n{text}"
            );
        }
        let build = line(&text, "colonymesh_build_info{").expect("build info");
        assert!(build.ends_with(" 1"), "{build}");
        // Every metric the Grafana dashboard in docs/ queries is one served here.
        let dashboard = include_str!("../../docs/grafana-dashboard.json");
        let dashboard: serde_json::Value = serde_json::from_str(dashboard).expect("valid JSON");
        let mut queried = 0;
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("an expression");
                for name in metric_names(expr) {
                    let base = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|suffix| name.strip_suffix(suffix))
                        .unwrap_or(&name);
                    let served = format!("# TYPE {base} ");
                    assert!(text.contains(&served), "dashboard queries unknown {name}");
                    queried += 1;
                }
            }
        }
        assert!(queried >= 20, "the dashboard queries {queried} metrics");
        // A member that left the leader's view is no longer reported.
        let text = metrics.render(&Snapshot::default());
        assert!(line(&text, "colonymesh_raft_replication_lag_entries{").is_none());
    }
}
