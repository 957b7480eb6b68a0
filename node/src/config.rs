//! Typed, versioned node configuration: TOML file and/or flags, validated once, then passed
//! down as immutable sub-structs (`api`, `raft`).

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// The only config file version this node reads.
pub const CONFIG_VERSION: u32 = 1;

/// Everything a node needs to start.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Must be `CONFIG_VERSION`.
    pub version: u32,
    /// Where RocksDB lives (required; `colonymesh node --data-dir` may give it).
    #[serde(default)]
    pub data_dir: PathBuf,
    /// Id of the ColonyOS server owner, recorded at bootstrap (`COLONIES_SERVER_ID`).
    #[serde(default)]
    pub server_id: Option<String>,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub raft: RaftConfig,
    #[serde(default)]
    pub mesh: MeshConfig,
    #[serde(default)]
    pub housekeeping: HousekeepingConfig,
    /// Built-in executors this node runs (`[[executors]]`).
    #[serde(default)]
    pub executors: Vec<ExecutorConfig>,
    /// The node's own executor of type `node` (fleet queries).
    #[serde(default)]
    pub fleet: FleetConfig,
    /// Per-source bans and limits on the API and the mesh (`[guard]`).
    #[serde(default)]
    pub guard: GuardConfig,
}

/// Protection (`node::guard`): per source address, bans after repeated failed
/// authentications and a budget of anonymous or failing requests; per identity, a request
/// rate and a long-poll cap.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// Failed authentications (bad signatures, unknown identities, refused peer
    /// certificates) within the window that ban a source. 0 never bans.
    pub auth_failures_max: u32,
    pub auth_failure_window_seconds: u64,
    /// How long a ban lasts.
    pub ban_seconds: u64,
    /// Sustained requests per second of one identity (a signed caller); 0 is unlimited.
    pub requests_per_second: u32,
    /// Requests one identity may send at once before the rate applies.
    pub request_burst: u32,
    /// Assign long-polls one identity may have waiting; 0 is unlimited (the node-wide
    /// `api.long_polls_max` still holds).
    #[serde(alias = "long_polls_per_source")]
    pub long_polls_per_identity: usize,
    /// Sustained anonymous requests per second from one source address: unsigned ones, and
    /// those that fail before an identity is established (bad signatures, unknown identities,
    /// malformed or oversized requests). Past it, the source is refused (429) until its
    /// budget refills. 0 is unlimited.
    pub anonymous_per_second: u32,
    /// Anonymous requests one source may send at once before its rate applies.
    pub anonymous_burst: u32,
    /// Networks (`a.b.c.d/n`, `x::y/n` or an address) that no rule applies to. Loopback by
    /// default: the node's own executors and local tools.
    pub exempt: Vec<String>,
}

impl Default for GuardConfig {
    /// 10 failures in 60 s ban for 10 minutes; per identity 500 requests/s (burst 1000) and
    /// 256 long-polls; per source 100 anonymous or failed requests/s (burst 200); loopback
    /// exempt. A site of any number of executors behind one address never meets them.
    fn default() -> GuardConfig {
        GuardConfig {
            auth_failures_max: 10,
            auth_failure_window_seconds: 60,
            ban_seconds: 600,
            requests_per_second: 500,
            request_burst: 1000,
            long_polls_per_identity: 256,
            anonymous_per_second: 100,
            anonymous_burst: 200,
            exempt: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }
}

/// What a built-in executor runs its processes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Programs and scripts declared in `functions`.
    Shell,
    /// Containers through the Docker Engine API.
    Docker,
}

/// A built-in executor (`[[executors]]`): it registers in `colony`, long-polls its own node
/// and runs up to `concurrency` processes at once.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Executor name; `{node}` is replaced by the node's name, so one config serves every
    /// node. Default `{node}-<type>`.
    #[serde(default)]
    pub name: String,
    /// `shell` or `docker`.
    #[serde(rename = "type")]
    pub kind: ExecutorKind,
    /// The ColonyOS executor type processes target. Default: `shell` or `docker`.
    #[serde(default)]
    pub executor_type: String,
    /// The colony the executor works for. With the colony owner's key (`colony_prvkey`, or
    /// `colony_prvkey_file`, relative to the config file) the executor registers and approves
    /// itself; without, it waits for the colony owner to add and approve its id.
    #[serde(default)]
    pub colony: String,
    #[serde(default)]
    pub colony_prvkey: Option<String>,
    #[serde(default)]
    pub colony_prvkey_file: Option<PathBuf>,
    /// Processes run at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Longest run of a process whose spec sets no `maxexectime`.
    #[serde(default = "default_exec_seconds")]
    pub max_exec_seconds: u64,
    /// Shell: the user functions run as when the node runs as root (default `nobody`).
    #[serde(default)]
    pub run_as: Option<String>,
    /// Shell: the functions offered, by `funcname`.
    #[serde(default)]
    pub functions: std::collections::BTreeMap<String, ShellFunction>,
    /// Docker: the Engine's socket (default: `DOCKER_HOST` or /var/run/docker.sock).
    #[serde(default)]
    pub docker_socket: Option<PathBuf>,
}

/// What output a shell function's stdout becomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Each stdout line is one output value (a string).
    #[default]
    Lines,
    /// stdout is one JSON document (an array becomes the output list).
    Json,
}

/// A function of a shell executor: a program with an argument template (run without a
/// shell), or a script run by `/bin/sh -c` with the spec's args as `$1`...
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellFunction {
    pub program: Option<String>,
    pub script: Option<String>,
    /// Argument template: `{args}` expands to every spec arg, `{N}` to arg N, `{N..}` to the
    /// args from N on, `{kwargs.NAME}` to a kwarg; other text is literal.
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub output: OutputFormat,
    #[serde(default)]
    pub description: String,
}

/// The node's own executor (type `node`, named after the node) with the built-in functions
/// `inventory` and, only when `exec = true`, `exec`. Runs when `colony` is set.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// The colony the executor works for. With the colony owner's key (`colony_prvkey`, or
    /// `colony_prvkey_file`, relative to the config file) the executor registers and approves
    /// itself; without, it waits for the colony owner to add and approve its id.
    pub colony: String,
    pub colony_prvkey: Option<String>,
    pub colony_prvkey_file: Option<PathBuf>,
    /// Offer `exec` (run any program as `run_as`): off by default.
    pub exec: bool,
    pub concurrency: usize,
    pub max_exec_seconds: u64,
    pub run_as: Option<String>,
}

impl Default for FleetConfig {
    /// No colony (off), no `exec`, 4 at once, runs bounded to 10 minutes.
    fn default() -> FleetConfig {
        FleetConfig {
            colony: String::new(),
            colony_prvkey: None,
            colony_prvkey_file: None,
            exec: false,
            concurrency: 4,
            max_exec_seconds: 600,
            run_as: None,
        }
    }
}

impl ExecutorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Shell => "shell",
            ExecutorKind::Docker => "docker",
        }
    }
}

impl ExecutorConfig {
    /// The executor's name on node `node` (the `{node}` placeholder filled in).
    pub fn name_on(&self, node: &str) -> String {
        let template = match self.name.as_str() {
            "" => format!("{{node}}-{}", self.kind.as_str()),
            name => name.to_string(),
        };
        template.replace("{node}", node)
    }

    /// The ColonyOS executor type it registers with.
    pub fn executor_type(&self) -> &str {
        match self.executor_type.as_str() {
            "" => self.kind.as_str(),
            given => given,
        }
    }
}

fn default_concurrency() -> usize {
    4
}

fn default_exec_seconds() -> u64 {
    3600
}

/// Mesh-wide cleanup, proposed by the leader every `interval_seconds`
/// (ColonyOS `COLONIES_CLEANUP_INTERVAL`, `COLONIES_RETENTION_POLICY`,
/// `COLONIES_STALE_EXECUTOR_DURATION`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HousekeepingConfig {
    pub interval_seconds: u64,
    /// Successful processes and workflows, and log lines, older than this are removed;
    /// 0 keeps them forever (ColonyOS's default: retention off).
    pub retention_seconds: u64,
    /// Executors not heard from for this long are removed and their running processes
    /// re-queued; 0 never removes them. At least 120: an idle executor is heard from at
    /// least once a minute.
    pub stale_executor_seconds: u64,
}

impl Default for HousekeepingConfig {
    /// Every 60 s, retention off, stale executors after 600 s (ColonyOS's defaults).
    fn default() -> HousekeepingConfig {
        HousekeepingConfig {
            interval_seconds: 60,
            retention_seconds: 0,
            stale_executor_seconds: 600,
        }
    }
}

/// The libp2p mesh and membership.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeshConfig {
    /// Multiaddrs to listen on for peers (TCP and QUIC).
    pub listen: Vec<String>,
    /// Peers to join through, as multiaddrs ending in `/p2p/<peer id>`. Empty: this node
    /// bootstraps a new mesh (when its store is fresh).
    pub join: Vec<String>,
    /// This node's name (default: the start of its peer id).
    pub name: String,
    /// Site label; voters are spread over sites.
    pub site: String,
    /// Voters the leader's autopilot keeps (odd; fewer when fewer nodes exist).
    pub voters_target: usize,
    /// Log entries a learner may lag behind the leader and still be promoted.
    pub learner_lag_max: u64,
    /// Period of the leader's autopilot.
    pub autopilot_ms: u64,
    /// How long a learner must be healthy (heard from, caught up) before promotion.
    pub stabilization_ms: u64,
    /// A voter silent this long is replaced by a stable learner.
    pub voter_dead_ms: u64,
    /// A non-voter silent this long is removed from the mesh and its certificate revoked.
    pub node_dead_ms: u64,
    /// How long a starting node waits to join the mesh and see a leader.
    pub join_timeout_ms: u64,
    /// Directory with the mesh's `mesh.json` and, on admission nodes, `mesh-root.key`
    /// (made by `colonymesh init`). Default: `<data_dir>/mesh`, created when bootstrapping.
    pub mesh_dir: Option<PathBuf>,
    /// Join token (`colonymesh token create`) presented on first join.
    pub token: Option<String>,
    /// Discover peers on the local network with mDNS (`colonymesh dev` turns it on).
    pub mdns: bool,
    /// Period of this node's status gossip.
    pub status_ms: u64,
    /// A node not heard by gossip for this long is shown as down.
    pub status_down_ms: u64,
    /// A node not heard by gossip for this long loses its running processes: the leader
    /// re-queues what its built-in executors were running, so other nodes can finish it.
    pub release_executors_ms: u64,
}

impl Default for MeshConfig {
    /// TCP and QUIC on loopback with OS-chosen ports, no peers (bootstrap), site `default`,
    /// 3 voters, promotion within 100 entries of the leader after 3 s healthy, autopilot every
    /// second, dead voters replaced after 15 s, dead nodes removed after 10 minutes.
    fn default() -> MeshConfig {
        MeshConfig {
            listen: vec![
                "/ip4/127.0.0.1/tcp/0".into(),
                "/ip4/127.0.0.1/udp/0/quic-v1".into(),
            ],
            join: Vec::new(),
            name: String::new(),
            site: "default".into(),
            voters_target: 3,
            learner_lag_max: 100,
            autopilot_ms: 1000,
            stabilization_ms: 3_000,
            voter_dead_ms: 15_000,
            node_dead_ms: 600_000,
            join_timeout_ms: 30_000,
            mesh_dir: None,
            token: None,
            mdns: false,
            status_ms: 2_000,
            status_down_ms: 10_000,
            release_executors_ms: 30_000,
        }
    }
}

/// The HTTP API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address to bind; loopback by default.
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Largest accepted request body. ColonyOS specs are small; 8 MiB leaves room for big
    /// args and outputs while bounding memory per request.
    pub body_bytes_max: usize,
    /// Longest assign long-poll a client may ask for; longer `timeout`s are capped to it.
    pub long_poll_seconds_max: u64,
    /// Concurrent long-polls on this node; more get 503, protecting memory and tasks.
    pub long_polls_max: usize,
    /// PEM certificate chain (leaf first); with `tls_key`, the API serves HTTPS and WSS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl Default for ApiConfig {
    /// Loopback, port 50080 (ColonyOS default), 8 MiB bodies, 1 h long-polls, 10,000 waiters.
    fn default() -> ApiConfig {
        ApiConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 50080,
            body_bytes_max: 8 << 20,
            long_poll_seconds_max: 3600,
            long_polls_max: 10_000,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// Raft timing and log compaction.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Period of the leader's tick command (expiry of maxexectime / maxwaittime).
    pub tick_ms: u64,
    /// Build a snapshot after this many applied entries since the last one.
    pub snapshot_logs: u64,
    /// Entries kept in the log behind a snapshot (lets lagging followers catch up by log).
    pub snapshot_logs_kept: u64,
    /// Most entries in one append-entries request.
    pub append_entries_max: u64,
    /// Snapshot chunk size; far below `net::MESSAGE_BYTES_MAX`.
    pub snapshot_chunk_bytes: u64,
    /// How long one snapshot chunk may take to send and install.
    pub snapshot_chunk_timeout_ms: u64,
}

impl Default for RaftConfig {
    /// Heartbeat 100 ms; election timeouts 250-400 ms. openraft 0.9 lets a follower stand for
    /// election only after the leader lease (`election_timeout_max`) plus its own election
    /// timeout, checked every 1.5 heartbeats, so a dead leader is replaced after 0.65-0.95 s.
    /// It also gives each append-entries RPC one heartbeat interval to complete (a slower one
    /// is retried, and only silence longer than the lease and timeout starts an election).
    /// 1 s ticks like ColonyOS; snapshots every 50,000 entries.
    fn default() -> RaftConfig {
        RaftConfig {
            heartbeat_ms: 100,
            election_timeout_min_ms: 250,
            election_timeout_max_ms: 400,
            tick_ms: 1000,
            snapshot_logs: 50_000,
            snapshot_logs_kept: 1_000,
            append_entries_max: 300,
            snapshot_chunk_bytes: 4 << 20,
            snapshot_chunk_timeout_ms: 5_000,
        }
    }
}

/// A config that cannot be used, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("config version {found} is not supported (expected {CONFIG_VERSION})")]
    Version { found: u32 },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl NodeConfig {
    /// A default config rooted at `data_dir`.
    pub fn new(data_dir: &Path) -> NodeConfig {
        NodeConfig {
            version: CONFIG_VERSION,
            data_dir: data_dir.to_path_buf(),
            server_id: None,
            api: ApiConfig::default(),
            raft: RaftConfig::default(),
            mesh: MeshConfig::default(),
            housekeeping: HousekeepingConfig::default(),
            executors: Vec::new(),
            fleet: FleetConfig::default(),
            guard: GuardConfig::default(),
        }
    }

    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: NodeConfig =
            toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        // Relative key files are relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        let files = config
            .executors
            .iter_mut()
            .map(|e| &mut e.colony_prvkey_file)
            .chain([&mut config.fleet.colony_prvkey_file]);
        for file in files {
            if let Some(file) = file.as_mut() {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
        }
        Ok(config)
    }

    /// Checks every field once; modules can then trust their sub-struct.
    pub fn validate(self) -> Result<NodeConfig, ConfigError> {
        let invalid = |field, reason: &str| ConfigError::Invalid {
            field,
            reason: reason.to_string(),
        };
        if self.version != CONFIG_VERSION {
            return Err(ConfigError::Version {
                found: self.version,
            });
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "is required"));
        }
        if let Some(id) = &self.server_id {
            if !proto::crypto::is_id(id) {
                return Err(invalid("server_id", "must be 64 hex characters"));
            }
        }
        let raft = &self.raft;
        if raft.election_timeout_min_ms <= 2 * raft.heartbeat_ms {
            return Err(invalid(
                "raft.election_timeout_min_ms",
                "must exceed 2 x heartbeat_ms",
            ));
        }
        if raft.election_timeout_max_ms <= raft.election_timeout_min_ms {
            return Err(invalid(
                "raft.election_timeout_max_ms",
                "must exceed the minimum",
            ));
        }
        if raft.tick_ms == 0 {
            return Err(invalid("raft.tick_ms", "must be positive"));
        }
        if self.api.body_bytes_max < 1024 {
            return Err(invalid("api.body_bytes_max", "must be at least 1024"));
        }
        let mesh = &self.mesh;
        if mesh.voters_target == 0 || mesh.voters_target % 2 == 0 || mesh.voters_target > 7 {
            return Err(invalid("mesh.voters_target", "must be odd, from 1 to 7"));
        }
        if mesh.node_dead_ms <= mesh.voter_dead_ms {
            return Err(invalid(
                "mesh.node_dead_ms",
                "must exceed mesh.voter_dead_ms",
            ));
        }
        if mesh.release_executors_ms <= mesh.status_down_ms {
            return Err(invalid(
                "mesh.release_executors_ms",
                "must exceed mesh.status_down_ms",
            ));
        }
        if mesh.listen.is_empty() {
            return Err(invalid("mesh.listen", "needs at least one address"));
        }
        if mesh.join.iter().any(|a| !a.contains("/p2p/")) {
            return Err(invalid("mesh.join", "addresses must end in /p2p/<peer id>"));
        }
        let housekeeping = &self.housekeeping;
        if housekeeping.interval_seconds == 0 {
            return Err(invalid("housekeeping.interval_seconds", "must be positive"));
        }
        if (1..120).contains(&housekeeping.stale_executor_seconds) {
            return Err(invalid(
                "housekeeping.stale_executor_seconds",
                "must be 0 (off) or at least 120",
            ));
        }
        self.validate_executors()?;
        if self.api.long_polls_max == 0 {
            return Err(invalid("api.long_polls_max", "must be positive"));
        }
        if self.api.tls_cert.is_some() != self.api.tls_key.is_some() {
            return Err(invalid(
                "api.tls_cert",
                "and api.tls_key go together: give both, or neither",
            ));
        }
        let guard = &self.guard;
        if guard.auth_failures_max > 0 && guard.auth_failure_window_seconds == 0 {
            return Err(invalid(
                "guard.auth_failure_window_seconds",
                "must be positive when bans are on",
            ));
        }
        if guard.auth_failures_max > 0 && guard.ban_seconds == 0 {
            return Err(invalid(
                "guard.ban_seconds",
                "must be positive when bans are on",
            ));
        }
        for network in &guard.exempt {
            crate::guard::parse_network(network).map_err(|reason| ConfigError::Invalid {
                field: "guard.exempt",
                reason,
            })?;
        }
        Ok(self)
    }
}

impl NodeConfig {
    fn validate_executors(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| ConfigError::Invalid { field, reason };
        let mut names = std::collections::BTreeSet::new();
        for (i, e) in self.executors.iter().enumerate() {
            let at = |what: &str| format!("executor {i} ({:?}): {what}", e.name);
            if e.colony.is_empty() {
                return Err(invalid("executors.colony", at("needs a colony")));
            }
            if e.concurrency == 0 || e.concurrency > 256 {
                return Err(invalid("executors.concurrency", at("must be 1 to 256")));
            }
            if e.max_exec_seconds == 0 {
                return Err(invalid(
                    "executors.max_exec_seconds",
                    at("must be positive"),
                ));
            }
            if !names.insert(e.name_on("node")) {
                return Err(invalid("executors.name", at("is used twice")));
            }
            match e.kind {
                ExecutorKind::Shell if e.functions.is_empty() => {
                    return Err(invalid(
                        "executors.functions",
                        at("a shell executor needs functions"),
                    ));
                }
                ExecutorKind::Docker if !e.functions.is_empty() => {
                    return Err(invalid(
                        "executors.functions",
                        at("only shell executors have functions"),
                    ));
                }
                _ => {}
            }
            for (name, f) in &e.functions {
                if f.program.is_some() == f.script.is_some() {
                    let reason = format!("function {name}: give exactly one of program and script");
                    return Err(invalid("executors.functions", at(&reason)));
                }
            }
        }
        if self.fleet.concurrency == 0 || self.fleet.concurrency > 256 {
            return Err(invalid("fleet.concurrency", "must be 1 to 256".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_unknown_field_is_refused() {
        let text = "version = 1\ndata_dir = \"/tmp/x\"\n[api]\nport = 1\nbogus = 2\n";
        let err = toml::from_str::<NodeConfig>(text).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn an_older_guard_section_still_parses() {
        let text = "version = 1\ndata_dir = \"/tmp/x\"\n[guard]\nlong_polls_per_source = 7\n";
        let config = toml::from_str::<NodeConfig>(text).expect("parses");
        assert_eq!(config.guard.long_polls_per_identity, 7);
        assert_eq!(config.guard.anonymous_per_second, 100, "the default");
    }

    #[test]
    fn validation_names_the_field() {
        let mut config = NodeConfig::new(Path::new("/tmp/x"));
        config.raft.election_timeout_min_ms = 100;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("raft.election_timeout_min_ms"), "{err}");
        let config = NodeConfig {
            version: 2,
            ..NodeConfig::new(Path::new("/tmp/x"))
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Version { found: 2 })
        ));
        let mut config = NodeConfig::new(Path::new("/tmp/x"));
        config.guard.exempt = vec!["10.0.0.0/40".into()];
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("guard.exempt") && err.contains("10.0.0.0/40"),
            "{err}"
        );
    }

    #[test]
    fn example_testnet_configs_are_valid() {
        let installed: NodeConfig =
            toml::from_str(include_str!("../../packaging/node.toml")).expect("parses");
        installed.validate().expect("the installed config is valid");
        let base = include_str!("../../testnet/config/node.toml");
        let docker = include_str!("../../testnet/config/docker.toml");
        for text in [base.to_string(), format!("{base}{docker}")] {
            let mut config: NodeConfig = toml::from_str(&text).expect("example parses");
            config.data_dir = PathBuf::from("/tmp/x");
            let config = config.validate().expect("example is valid");
            assert_eq!(config.fleet.colony, "dev");
            assert_eq!(config.executors[0].name_on("n1"), "n1-shell");
            assert!(config.executors[0].functions.contains_key("true"));
        }
    }

    #[test]
    fn executor_config_mistakes_are_named() {
        let text = "version = 1\ndata_dir = \"/x\"\n[[executors]]\ntype = \"shell\"\n\
                    colony = \"dev\"\n[executors.functions.f]\nprogram = \"/bin/true\"\n\
                    script = \"true\"\n";
        let config: NodeConfig = toml::from_str(text).expect("parses");
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("exactly one of program and script"), "{err}");
        let text = "version = 1\n[[executors]]\ntype = \"podman\"\ncolony = \"dev\"\n";
        let err = toml::from_str::<NodeConfig>(text).unwrap_err().to_string();
        assert!(err.contains("podman"), "{err}");
        let config: NodeConfig = toml::from_str("version = 1\n").expect("parses");
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("data_dir"), "{err}");
    }
}
