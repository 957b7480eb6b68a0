//! Functions an executor registers, with run statistics (`pkg/core/function.go`); process
//! and executor log lines (`pkg/core/log.go`); locations (`pkg/core/location.go`).

use crate::lenient::null_default as nd;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A function an executor offers, and how its runs went (times in seconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Function {
    #[serde(default, deserialize_with = "nd")]
    pub functionid: String,
    #[serde(default, deserialize_with = "nd")]
    pub executorname: String,
    #[serde(default, deserialize_with = "nd")]
    pub executortype: String,
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub funcname: String,
    #[serde(
        default,
        deserialize_with = "nd",
        skip_serializing_if = "String::is_empty"
    )]
    pub description: String,
    /// Argument descriptions (`name, type, description, required, enum`), kept as sent.
    #[serde(
        default,
        deserialize_with = "nd",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<Value>,
    #[serde(default, deserialize_with = "nd")]
    pub counter: i64,
    #[serde(default, deserialize_with = "nd")]
    pub minwaittime: f64,
    #[serde(default, deserialize_with = "nd")]
    pub maxwaittime: f64,
    #[serde(default, deserialize_with = "nd")]
    pub minexectime: f64,
    #[serde(default, deserialize_with = "nd")]
    pub maxexectime: f64,
    #[serde(default, deserialize_with = "nd")]
    pub avgwaittime: f64,
    #[serde(default, deserialize_with = "nd")]
    pub avgexectime: f64,
    #[serde(
        default,
        deserialize_with = "nd",
        skip_serializing_if = "String::is_empty"
    )]
    pub locationname: String,
}

impl Function {
    /// Counts one more run that waited `wait` and ran `exec` seconds.
    pub fn record_run(&mut self, wait: f64, exec: f64) {
        let n = self.counter as f64;
        if self.counter == 0 {
            (self.minwaittime, self.maxwaittime) = (wait, wait);
            (self.minexectime, self.maxexectime) = (exec, exec);
        } else {
            self.minwaittime = self.minwaittime.min(wait);
            self.maxwaittime = self.maxwaittime.max(wait);
            self.minexectime = self.minexectime.min(exec);
            self.maxexectime = self.maxexectime.max(exec);
        }
        self.avgwaittime = (self.avgwaittime * n + wait) / (n + 1.0);
        self.avgexectime = (self.avgexectime * n + exec) / (n + 1.0);
        self.counter += 1;
    }
}

/// One log line of a process or an executor. `timestamp` is Unix nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Log {
    #[serde(default, deserialize_with = "nd")]
    pub processid: String,
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub executorname: String,
    #[serde(default, deserialize_with = "nd")]
    pub message: String,
    #[serde(default, deserialize_with = "nd")]
    pub timestamp: i64,
}

/// A named place executors and processes can be tied to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    #[serde(default, deserialize_with = "nd")]
    pub locationid: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub description: String,
    #[serde(default, deserialize_with = "nd")]
    pub long: f64,
    #[serde(default, deserialize_with = "nd")]
    pub lat: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_statistics_track_min_max_and_mean() {
        let mut f = Function::default();
        f.record_run(1.0, 10.0);
        f.record_run(3.0, 20.0);
        assert_eq!(f.counter, 2);
        assert_eq!(
            (f.minwaittime, f.maxwaittime, f.avgwaittime),
            (1.0, 3.0, 2.0)
        );
        assert_eq!(
            (f.minexectime, f.maxexectime, f.avgexectime),
            (10.0, 20.0, 15.0)
        );
        let json = serde_json::to_string(&f).unwrap();
        assert!(
            !json.contains("description") && !json.contains("args"),
            "{json}"
        );
    }
}
