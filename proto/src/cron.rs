//! Crons and generators (`pkg/core/{cron,generator}.go`): workflows started on a schedule,
//! or once enough arguments have been packed. Their `workflowspec` is a JSON string.

use crate::gotime::GoTime;
use crate::lenient::null_default as nd;
use serde::{Deserialize, Serialize};

/// A workflow started by a cron expression (`interval` -1) or every `interval` seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cron {
    #[serde(default, deserialize_with = "nd")]
    pub cronid: String,
    #[serde(default, deserialize_with = "nd")]
    pub initiatorid: String,
    #[serde(default, deserialize_with = "nd")]
    pub initiatorname: String,
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "nd")]
    pub cronexpression: String,
    #[serde(default, deserialize_with = "nd")]
    pub interval: i64,
    #[serde(default, deserialize_with = "nd")]
    pub random: bool,
    #[serde(default)]
    pub nextrun: GoTime,
    #[serde(default)]
    pub lastrun: GoTime,
    #[serde(default, deserialize_with = "nd")]
    pub workflowspec: String,
    #[serde(default, deserialize_with = "nd")]
    pub prevprocessgraphid: String,
    #[serde(default, deserialize_with = "nd")]
    pub waitforprevprocessgraph: bool,
    #[serde(default, deserialize_with = "nd")]
    pub checkerperiod: i64,
}

/// A workflow started for every `trigger` packed arguments, or with what is packed once
/// `timeout` seconds passed since the first pack.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    #[serde(default, deserialize_with = "nd")]
    pub generatorid: String,
    #[serde(default, deserialize_with = "nd")]
    pub initiatorid: String,
    #[serde(default, deserialize_with = "nd")]
    pub initiatorname: String,
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "nd")]
    pub workflowspec: String,
    #[serde(default, deserialize_with = "nd")]
    pub trigger: i64,
    #[serde(default, deserialize_with = "nd")]
    pub timeout: i64,
    #[serde(default)]
    pub firstpack: GoTime,
    #[serde(default)]
    pub lastrun: GoTime,
    #[serde(default, deserialize_with = "nd")]
    pub queuesize: i64,
    #[serde(default, deserialize_with = "nd")]
    pub checkerperiod: i64,
}
