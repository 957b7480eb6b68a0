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
    /// Where RocksDB lives.
    pub data_dir: PathBuf,
    /// Id of the ColonyOS server owner, recorded at bootstrap (`COLONIES_SERVER_ID`).
    #[serde(default)]
    pub server_id: Option<String>,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub raft: RaftConfig,
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
        }
    }
}

/// Raft timing and log compaction.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    /// This node's raft id.
    pub node_id: u64,
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
}

impl Default for RaftConfig {
    /// Node 1; heartbeat 100 ms; elections after 400-800 ms (a single node re-elects itself
    /// quickly on restart); 1 s ticks like ColonyOS; snapshots every 50,000 entries.
    fn default() -> RaftConfig {
        RaftConfig {
            node_id: 1,
            heartbeat_ms: 100,
            election_timeout_min_ms: 400,
            election_timeout_max_ms: 800,
            tick_ms: 1000,
            snapshot_logs: 50_000,
            snapshot_logs_kept: 1_000,
            append_entries_max: 300,
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
        }
    }

    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
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
        if self.api.long_polls_max == 0 {
            return Err(invalid("api.long_polls_max", "must be positive"));
        }
        Ok(self)
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
    }
}
