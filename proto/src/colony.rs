//! Colonies, users and statistics: the tenant-level ColonyOS objects (`pkg/core/{colony,user,
//! statistics}.go`).

use crate::lenient::null_default as nd;
use serde::{Deserialize, Serialize};

/// A named tenant; its owner holds the private key whose id is `colonyid`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Colony {
    #[serde(default, deserialize_with = "nd")]
    pub colonyid: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
}

/// A human or application registered in a colony by its owner; counts as a member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub userid: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "nd")]
    pub email: String,
    #[serde(default, deserialize_with = "nd")]
    pub phone: String,
}

/// Counters for a colony (`getcolonystatsmsg`) or the whole server (`getstatisticsmsg`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    #[serde(default, deserialize_with = "nd")]
    pub colonies: i64,
    #[serde(default, deserialize_with = "nd")]
    pub executors: i64,
    #[serde(default, deserialize_with = "nd")]
    pub activeexecutors: i64,
    #[serde(default, deserialize_with = "nd")]
    pub unregisteredexecutors: i64,
    #[serde(default, deserialize_with = "nd")]
    pub waitingprocesses: i64,
    #[serde(default, deserialize_with = "nd")]
    pub runningprocesses: i64,
    #[serde(default, deserialize_with = "nd")]
    pub successfulprocesses: i64,
    #[serde(default, deserialize_with = "nd")]
    pub failedprocesses: i64,
    #[serde(default, deserialize_with = "nd")]
    pub cancelledprocesses: i64,
    #[serde(default, deserialize_with = "nd")]
    pub waitingworkflows: i64,
    #[serde(default, deserialize_with = "nd")]
    pub runningworkflows: i64,
    #[serde(default, deserialize_with = "nd")]
    pub successfulworkflows: i64,
    #[serde(default, deserialize_with = "nd")]
    pub failedworkflows: i64,
    #[serde(default, deserialize_with = "nd")]
    pub cancelledworkflows: i64,
}
