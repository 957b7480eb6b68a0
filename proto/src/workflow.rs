//! Workflows: the submitted `WorkflowSpec` and the `ProcessGraph` it becomes
//! (`pkg/core/{workerflow_spec,processgraph}.go`), with the UI layout (`nodes`, `edges`) that
//! ColonyOS computes when it serializes a graph.

use crate::gotime::GoTime;
use crate::lenient::null_default as nd;
use crate::process::{process_state as ps, FunctionSpec, Process};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A workflow as submitted: function specs whose `conditions.dependencies` name the
/// `nodename`s of their parents.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowSpec {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub functionspecs: Vec<FunctionSpec>,
}

/// Position of a node in the UI layout.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub x: i64,
    pub y: i64,
}

/// One process of a graph as the UI draws it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    pub id: String,
    pub data: BTreeMap<String, String>,
    pub position: Position,
    #[serde(rename = "type")]
    pub kind: String,
    pub style: BTreeMap<String, String>,
}

/// A parent -> child edge as the UI draws it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    pub id: String,
    pub source: String,
    pub target: String,
    pub animated: bool,
}

/// A submitted workflow: its processes and its derived state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessGraph {
    #[serde(default, deserialize_with = "nd")]
    pub processgraphid: String,
    #[serde(default, deserialize_with = "nd")]
    pub initiatorid: String,
    #[serde(default, deserialize_with = "nd")]
    pub initiatorname: String,
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub rootprocessids: Vec<String>,
    #[serde(default, deserialize_with = "nd")]
    pub state: i32,
    #[serde(default)]
    pub submissiontime: GoTime,
    #[serde(default)]
    pub starttime: GoTime,
    #[serde(default)]
    pub endtime: GoTime,
    #[serde(default, deserialize_with = "nd")]
    pub processids: Vec<String>,
    #[serde(default, deserialize_with = "nd")]
    pub nodes: Vec<GraphNode>,
    #[serde(default, deserialize_with = "nd")]
    pub edges: Vec<Edge>,
}

/// Horizontal and vertical distance between laid-out nodes.
const LAYOUT_STEP_X: i64 = 200;
const LAYOUT_STEP_Y: i64 = 100;

/// The UI colors of a process state: (text, background).
fn state_colors(state: i32) -> (&'static str, &'static str) {
    match state {
        ps::RUNNING => ("#000", "#ffd966"),
        ps::SUCCESS => ("#fff", "#38a169"),
        ps::FAILED => ("#fff", "#e53e3e"),
        ps::CANCELLED => ("#fff", "#718096"),
        _ => ("#000", "#e2e8f0"),
    }
}

impl ProcessGraph {
    /// Fills `nodes` and `edges` from the graph's processes: one row per depth (roots on top),
    /// labelled by node name and colored by state. Processes not in `processids` are ignored.
    pub fn with_layout(mut self, processes: &[Process]) -> ProcessGraph {
        let by_id: BTreeMap<&str, &Process> = processes
            .iter()
            .map(|p| (p.processid.as_str(), p))
            .collect();
        let mut depth: BTreeMap<&str, i64> = BTreeMap::new();
        // Parents come before children in `processids` except after an insert; a few passes
        // settle any order (bounded by the graph size).
        for _ in 0..self.processids.len().max(1) {
            let mut changed = false;
            for id in &self.processids {
                let Some(p) = by_id.get(id.as_str()) else {
                    continue;
                };
                let d = p
                    .parents
                    .iter()
                    .filter_map(|parent| depth.get(parent.as_str()).map(|d| d + 1))
                    .max()
                    .unwrap_or(0);
                if depth.get(id.as_str()) != Some(&d) {
                    depth.insert(id.as_str(), d);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut per_row: BTreeMap<i64, i64> = BTreeMap::new();
        self.nodes.clear();
        self.edges.clear();
        for id in &self.processids {
            let Some(p) = by_id.get(id.as_str()) else {
                continue;
            };
            let row = depth.get(id.as_str()).copied().unwrap_or(0);
            let column = per_row.entry(row).or_insert(0);
            let (color, background) = state_colors(p.state);
            let label = if p.spec.nodename.is_empty() {
                p.spec.funcname.clone()
            } else {
                p.spec.nodename.clone()
            };
            self.nodes.push(GraphNode {
                id: id.clone(),
                data: BTreeMap::from([("label".to_string(), label)]),
                position: Position {
                    x: *column * LAYOUT_STEP_X,
                    y: row * LAYOUT_STEP_Y,
                },
                kind: if p.parents.is_empty() {
                    "input".into()
                } else if p.children.is_empty() {
                    "output".into()
                } else {
                    "default".into()
                },
                style: BTreeMap::from([
                    ("color".to_string(), color.to_string()),
                    ("background".to_string(), background.to_string()),
                ]),
            });
            *column += 1;
            for child in &p.children {
                self.edges.push(Edge {
                    id: format!("e{id}-{child}"),
                    source: id.clone(),
                    target: child.clone(),
                    animated: p.state == ps::RUNNING,
                });
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(id: &str, parents: &[&str], children: &[&str]) -> Process {
        let mut p = Process {
            processid: id.into(),
            parents: parents.iter().map(|s| s.to_string()).collect(),
            children: children.iter().map(|s| s.to_string()).collect(),
            ..Process::default()
        };
        p.spec.nodename = format!("node-{id}");
        p
    }

    #[test]
    fn layout_puts_children_below_their_deepest_parent() {
        // a -> b -> c and a -> c: c sits on row 2, under b.
        let processes = [
            process("c", &["a", "b"], &[]),
            process("b", &["a"], &["c"]),
            process("a", &[], &["b", "c"]),
        ];
        let graph = ProcessGraph {
            processids: vec!["c".into(), "b".into(), "a".into()],
            ..ProcessGraph::default()
        }
        .with_layout(&processes);
        let y = |id: &str| graph.nodes.iter().find(|n| n.id == id).unwrap().position.y;
        assert_eq!((y("a"), y("b"), y("c")), (0, 100, 200));
        assert_eq!(graph.edges.len(), 3);
        assert_eq!(graph.nodes[2].data["label"], "node-a");
        let json = serde_json::to_string(&graph).unwrap();
        assert!(json.contains(r#""type":"output""#), "{json}");
    }
}
