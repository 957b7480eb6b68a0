//! Executors: workers that pull processes from a colony (`pkg/core/executor.go`).

use crate::gotime::GoTime;
use crate::lenient::null_default as nd;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Executor registration state, sent as an integer.
pub mod executor_state {
    pub const PENDING: i32 = 0;
    pub const APPROVED: i32 = 1;
    pub const REJECTED: i32 = 2;
    pub const UNREGISTERED: i32 = 3;
}

/// Hardware and software an executor advertises; kept as the client sent it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(default, deserialize_with = "nd")]
    pub hardware: Vec<Value>,
    #[serde(default, deserialize_with = "nd")]
    pub software: Vec<Value>,
}

/// Per-project resource allocations reported by an executor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Allocations {
    #[serde(default, deserialize_with = "nd")]
    pub projects: serde_json::Map<String, Value>,
}

/// A worker registered in a colony. It has exactly one type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Executor {
    #[serde(default, deserialize_with = "nd")]
    pub executorid: String,
    #[serde(default, deserialize_with = "nd")]
    pub executortype: String,
    #[serde(default, deserialize_with = "nd")]
    pub executorname: String,
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub state: i32,
    #[serde(default, deserialize_with = "nd")]
    pub requirefuncreg: bool,
    #[serde(default)]
    pub commissiontime: GoTime,
    #[serde(default)]
    pub lastheardfromtime: GoTime,
    #[serde(
        default,
        deserialize_with = "nd",
        skip_serializing_if = "String::is_empty"
    )]
    pub locationname: String,
    #[serde(default, deserialize_with = "nd")]
    pub capabilities: Capabilities,
    #[serde(default, deserialize_with = "nd")]
    pub allocations: Allocations,
    #[serde(
        default,
        deserialize_with = "nd",
        skip_serializing_if = "String::is_empty"
    )]
    pub blueprintid: String,
    #[serde(default, deserialize_with = "nd", skip_serializing_if = "is_zero")]
    pub blueprintgen: i64,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}
