//! Processes and their specs: what is submitted, queued, assigned and closed
//! (`pkg/core/{process,function_spec,attribute}.go`). Field order is Go's emission order.

use crate::gotime::GoTime;
use crate::lenient::null_default as nd;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Process states as integers on the wire. `NOTSET` (-1) means "all" in remove-all requests.
pub mod process_state {
    pub const NOTSET: i32 = -1;
    pub const WAITING: i32 = 0;
    pub const RUNNING: i32 = 1;
    pub const SUCCESS: i32 = 2;
    pub const FAILED: i32 = 3;
    pub const CANCELLED: i32 = 4;

    /// True for states a process never leaves.
    pub fn is_terminal(state: i32) -> bool {
        matches!(state, SUCCESS | FAILED | CANCELLED)
    }
}

/// Attribute types (`pkg/core/attribute.go`).
pub mod attribute_type {
    pub const IN: i32 = 0;
    pub const OUT: i32 = 1;
    pub const ERR: i32 = 2;
    pub const ENV: i32 = 3;
}

/// Priority bounds (`pkg/constants/constants.go`); each point is worth one day of queue age.
pub const PRIORITY_MIN: i64 = -50_000;
pub const PRIORITY_MAX: i64 = 50_000;
/// Nanoseconds one priority point moves a process in the queue.
pub const PRIORITY_STEP_NANOS: i64 = 86_400 * 1_000_000_000;

/// GPU requirement of a spec (stored, not matched, as in ColonyOS).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "nd")]
    pub mem: String,
    #[serde(default, deserialize_with = "nd")]
    pub count: i64,
    #[serde(default, deserialize_with = "nd")]
    pub nodecount: i64,
}

/// Where and on what a process may run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Conditions {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub executornames: Vec<String>,
    #[serde(default, deserialize_with = "nd")]
    pub executortype: String,
    #[serde(
        default,
        deserialize_with = "nd",
        skip_serializing_if = "String::is_empty"
    )]
    pub locationname: String,
    #[serde(default, deserialize_with = "nd")]
    pub dependencies: Vec<String>,
    #[serde(default, deserialize_with = "nd")]
    pub nodes: i64,
    #[serde(default, deserialize_with = "nd")]
    pub cpu: String,
    #[serde(default, deserialize_with = "nd")]
    pub processes: i64,
    #[serde(default, deserialize_with = "nd")]
    pub processespernode: i64,
    #[serde(default, deserialize_with = "nd")]
    pub mem: String,
    #[serde(default, deserialize_with = "nd")]
    pub storage: String,
    #[serde(default, deserialize_with = "nd")]
    pub gpu: Gpu,
    #[serde(default, deserialize_with = "nd")]
    pub walltime: i64,
}

/// ColonyFS mounts of a spec; kept as sent (the bytes live in S3, not here).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Filesystem {
    #[serde(default, deserialize_with = "nd")]
    pub mount: String,
    #[serde(default)]
    pub snapshots: Option<Vec<Value>>,
    #[serde(default)]
    pub dirs: Option<Vec<Value>>,
}

/// What to run: a function name, its arguments and the conditions on who may run it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    #[serde(default, deserialize_with = "nd")]
    pub nodename: String,
    #[serde(default, deserialize_with = "nd")]
    pub funcname: String,
    #[serde(default, deserialize_with = "nd")]
    pub args: Vec<Value>,
    #[serde(default)]
    pub kwargs: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "nd")]
    pub priority: i64,
    #[serde(default, deserialize_with = "nd")]
    pub maxwaittime: i64,
    #[serde(default, deserialize_with = "nd")]
    pub maxexectime: i64,
    #[serde(default, deserialize_with = "nd")]
    pub maxretries: i64,
    #[serde(default, deserialize_with = "nd")]
    pub conditions: Conditions,
    #[serde(default, deserialize_with = "nd")]
    pub label: String,
    #[serde(default, deserialize_with = "nd")]
    pub fs: Filesystem,
    #[serde(default, deserialize_with = "nd")]
    pub env: Map<String, Value>,
    #[serde(
        default,
        deserialize_with = "nd",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub channels: Vec<String>,
}

/// A key/value record attached to a process.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    #[serde(default, deserialize_with = "nd")]
    pub attributeid: String,
    #[serde(default, deserialize_with = "nd")]
    pub targetid: String,
    #[serde(default, deserialize_with = "nd")]
    pub targetcolonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub targetprocessgraphid: String,
    #[serde(default, deserialize_with = "nd")]
    pub state: i32,
    #[serde(default, deserialize_with = "nd")]
    pub attributetype: i32,
    #[serde(default, deserialize_with = "nd")]
    pub key: String,
    #[serde(default, deserialize_with = "nd")]
    pub value: String,
}

impl Attribute {
    /// ColonyOS attribute id: SHA3-256 of `targetid + key + decimal(type)`.
    pub fn derive_id(targetid: &str, key: &str, attributetype: i32) -> String {
        crate::crypto::sha3_hex(format!("{targetid}{key}{attributetype}").as_bytes())
    }
}

/// A submitted function spec and its life: queued, assigned, closed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Process {
    #[serde(default, deserialize_with = "nd")]
    pub processid: String,
    #[serde(default, deserialize_with = "nd")]
    pub initiatorid: String,
    #[serde(default, deserialize_with = "nd")]
    pub initiatorname: String,
    #[serde(default, deserialize_with = "nd")]
    pub assignedexecutorid: String,
    #[serde(default, deserialize_with = "nd")]
    pub isassigned: bool,
    #[serde(default, deserialize_with = "nd")]
    pub state: i32,
    #[serde(default, deserialize_with = "nd")]
    pub prioritytime: i64,
    #[serde(default)]
    pub submissiontime: GoTime,
    #[serde(default)]
    pub starttime: GoTime,
    #[serde(default)]
    pub endtime: GoTime,
    #[serde(default)]
    pub waitdeadline: GoTime,
    #[serde(default)]
    pub execdeadline: GoTime,
    #[serde(default, deserialize_with = "nd")]
    pub retries: i64,
    #[serde(default, deserialize_with = "nd")]
    pub attributes: Vec<Attribute>,
    #[serde(default, deserialize_with = "nd")]
    pub spec: FunctionSpec,
    #[serde(default, deserialize_with = "nd")]
    pub waitforparents: bool,
    #[serde(default, deserialize_with = "nd")]
    pub parents: Vec<String>,
    #[serde(default, deserialize_with = "nd")]
    pub children: Vec<String>,
    #[serde(default, deserialize_with = "nd")]
    pub processgraphid: String,
    #[serde(default, deserialize_with = "nd", rename = "in")]
    pub input: Vec<Value>,
    #[serde(default, deserialize_with = "nd", rename = "out")]
    pub output: Vec<Value>,
    #[serde(default, deserialize_with = "nd")]
    pub errors: Vec<String>,
}

#[cfg(test)]
mod tests;
