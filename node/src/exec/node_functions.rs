//! The node's own executor (type `node`, named after the node): built-in fleet functions.
//! `inventory` describes the machine; `exec` (only when enabled in config) runs a program
//! given as the spec's args, through the shell backend's argv path (never a shell).

use super::job::{Job, Outcome};
use super::shell::Shell;
use crate::config::ShellFunction;
use crate::host;
use std::collections::BTreeMap;

pub(crate) const INVENTORY: &str = "inventory";
pub(crate) const EXEC: &str = "exec";

pub(crate) struct NodeFunctions {
    /// Runs `exec`; none when `exec` is off.
    exec: Option<Shell>,
}

impl NodeFunctions {
    pub(crate) fn new(exec: bool, run_as: Option<&str>) -> anyhow::Result<NodeFunctions> {
        let exec = match exec {
            true => Some(Shell::new(BTreeMap::new(), run_as)?),
            false => None,
        };
        Ok(NodeFunctions { exec })
    }

    pub(crate) fn functions(&self) -> Vec<String> {
        let mut functions = vec![INVENTORY.to_string()];
        if self.exec.is_some() {
            functions.push(EXEC.to_string());
        }
        functions
    }

    pub(crate) async fn run(&self, job: &Job) -> Outcome {
        match (job.process.spec.funcname.as_str(), &self.exec) {
            (INVENTORY, _) => match tokio::task::spawn_blocking(host::inventory).await {
                Ok(inventory) => Outcome::Success(vec![inventory]),
                Err(error) => Outcome::failure(format!("inventory failed: {error}")),
            },
            (EXEC, Some(shell)) => {
                // The program is the first argument, the rest are its arguments.
                let function = ShellFunction {
                    program: Some("{0}".into()),
                    args: vec!["{1..}".into()],
                    ..ShellFunction::default()
                };
                shell.run_function(job, &function).await
            }
            (EXEC, None) => Outcome::failure("exec is not enabled on this node (fleet.exec)"),
            (other, _) => Outcome::failure(format!(
                "function {other:?} is not a node function (inventory, exec)"
            )),
        }
    }
}
