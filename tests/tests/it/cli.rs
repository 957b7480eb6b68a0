//! The `colonymesh` client commands against a real `colonymesh dev` node: every command runs
//! as a child process with the node's `export COLONIES_...` lines as its environment and
//! `--json`, and the test reads its JSON output like a script would.

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};

/// Longest one client command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `colonymesh dev` node, killed on drop, and a scratch dir for spec files.
struct Dev {
    _child: Child,
    exports: HashMap<String, String>,
    dir: tempfile::TempDir,
}

impl Dev {
    /// Starts `colonymesh dev` on a fresh data dir and reads the `export` lines it prints.
    async fn start() -> Dev {
        let dir = tempfile::tempdir().unwrap();
        let (child, exports) = tests::start_dev(&dir.path().join("data"), &[]).await;
        Dev {
            _child: child,
            exports,
            dir,
        }
    }

    /// `colonymesh --json ARGS` with the dev exports as its only `COLONIES_*` variables.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = tests::colonymesh_command();
        command
            .arg("--json")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .envs(&self.exports);
        command
    }

    async fn output(&self, args: &[&str]) -> Output {
        let run = self.command(args).output();
        tokio::time::timeout(COMMAND_TIMEOUT, run)
            .await
            .unwrap_or_else(|_| panic!("{args:?} did not finish within {COMMAND_TIMEOUT:?}"))
            .expect("run colonymesh")
    }

    /// Runs a command that must succeed and returns its JSON output.
    async fn ok(&self, args: &[&str]) -> Value {
        let output = self.output(args).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?} printed {stdout:?}: {e}"))
    }

    /// Runs a command that must fail and returns what it printed on stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let output = self.output(args).await;
        assert!(
            !output.status.success(),
            "{args:?} should fail but printed {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Writes `value` as JSON to `name` in the scratch dir.
    fn file(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, value.to_string()).expect("write spec file");
        path
    }

    fn var(&self, name: &str) -> &str {
        &self.exports[name]
    }
}

fn text(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {value}"))
}

/// A workflow `first -> second` of the dev executor's type.
fn two_node_workflow(executortype: &str) -> Value {
    serde_json::json!({
        "functionspecs": [
            {"nodename": "first", "funcname": "echo",
             "conditions": {"executortype": executortype}},
            {"nodename": "second", "funcname": "echo",
             "conditions": {"executortype": executortype, "dependencies": ["first"]}},
        ]
    })
}

fn messages(logs: &[Value]) -> Vec<&str> {
    logs.iter().map(|l| str_of(l, "message")).collect()
}

/// - `workflow submit` of a 2-node workflow; `workflow get` shows both processes
/// - the executor runs them: `process assign`, `log add`, `process close`; `log get` returns
///   the lines in order, `log get --follow` prints lines until the process is closed
/// - the workflow ends successful and `workflow ps --state successful` lists it
/// - `process pause`, `process status` says paused, `process resume`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_run_through_the_cli() {
    let dev = Dev::start().await;
    let spec = dev.file(
        "workflow.json",
        &two_node_workflow(dev.var("COLONIES_EXECUTOR_TYPE")),
    );
    let graph = dev.ok(&["workflow", "submit", "--spec", text(&spec)]).await;
    let graph_id = str_of(&graph, "processgraphid").to_string();
    let shown = dev.ok(&["workflow", "get", "--id", &graph_id]).await;
    assert_eq!(str_of(&shown, "processgraphid"), graph_id);
    let processes = shown["processes"].as_array().expect("processes");
    assert_eq!(processes.len(), 2, "{shown}");
    let node_id = |name: &str| {
        let process = processes
            .iter()
            .find(|p| p["spec"]["nodename"] == name)
            .unwrap_or_else(|| panic!("node {name} in {shown}"));
        str_of(process, "processid").to_string()
    };
    let (first, second) = (node_id("first"), node_id("second"));

    tracing::info!("--- run the first node with a log");
    let assigned = dev.ok(&["process", "assign", "--timeout", "10"]).await;
    assert_eq!(str_of(&assigned, "processid"), first);
    for line in ["line 1", "line 2", "line 3"] {
        let args = ["log", "add", "--processid", &first, "--message", line];
        dev.ok(&args).await;
    }
    dev.ok(&["process", "close", "--id", &first]).await;
    let logs = dev.ok(&["log", "get", "--processid", &first]).await;
    let logs = logs.as_array().expect("a list of log lines");
    assert_eq!(messages(logs), ["line 1", "line 2", "line 3"]);
    let latest = dev
        .ok(&[
            "log",
            "get",
            "--processid",
            &first,
            "--latest",
            "--count",
            "1",
        ])
        .await;
    assert_eq!(messages(latest.as_array().expect("list")), ["line 3"]);

    tracing::info!("--- follow the second node's log while it runs");
    let assigned = dev.ok(&["process", "assign", "--timeout", "10"]).await;
    assert_eq!(str_of(&assigned, "processid"), second);
    let follow = dev
        .command(&["log", "get", "--processid", &second, "--follow"])
        .spawn()
        .expect("spawn log get --follow");
    for line in ["a", "b"] {
        let args = ["log", "add", "--processid", &second, "--message", line];
        dev.ok(&args).await;
    }
    dev.ok(&["process", "close", "--id", &second]).await;
    let followed = tokio::time::timeout(COMMAND_TIMEOUT, follow.wait_with_output())
        .await
        .expect("log get --follow ends once the process is closed")
        .expect("run log get --follow");
    assert!(followed.status.success(), "{followed:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&followed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(messages(&lines), ["a", "b"]);

    let shown = dev.ok(&["workflow", "get", "--id", &graph_id]).await;
    assert_eq!(shown["state"], 2, "successful: {shown}");
    let listed = dev.ok(&["workflow", "ps", "--state", "successful"]).await;
    assert!(listed
        .as_array()
        .expect("list")
        .iter()
        .any(|g| g["processgraphid"] == graph_id.as_str()));

    tracing::info!("--- pause and resume assignments");
    dev.ok(&["process", "pause"]).await;
    assert_eq!(dev.ok(&["process", "status"]).await["ispaused"], true);
    dev.ok(&["process", "resume"]).await;
    assert_eq!(dev.ok(&["process", "status"]).await["ispaused"], false);
    dev.ok(&["workflow", "rm", "--id", &graph_id]).await;
    let error = dev.fails(&["workflow", "get", "--id", &graph_id]).await;
    assert!(error.contains("not found"), "{error}");
}

/// - `cron add --interval 3600`, `cron ls` lists it, `cron rm` removes it
/// - `generator add`, `generator get --name`, `generator rm`
/// - `function register`, `function ls`, `function rm`
/// - `location add|ls|rm`, `blueprint definition add|ls|rm`, `fs snapshot ls`
/// - bad input exits non-zero with a message naming the problem
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_through_the_cli() {
    let dev = Dev::start().await;
    let workflow = dev.file(
        "workflow.json",
        &two_node_workflow(dev.var("COLONIES_EXECUTOR_TYPE")),
    );
    let workflow = text(&workflow);

    tracing::info!("--- crons");
    let add = ["cron", "add", "--name", "hourly", "--interval", "3600"];
    let cron = dev.ok(&[&add[..], &["--spec", workflow]].concat()).await;
    assert_eq!(cron["name"], "hourly");
    assert_eq!(cron["interval"], 3600);
    let cron_id = str_of(&cron, "cronid").to_string();
    let listed = dev.ok(&["cron", "ls"]).await;
    let ids = |list: &Value, field: &str| -> Vec<String> {
        let list = list.as_array().expect("a list");
        list.iter().map(|c| str_of(c, field).to_string()).collect()
    };
    assert_eq!(ids(&listed, "cronid"), [cron_id.as_str()]);
    assert_eq!(
        str_of(&dev.ok(&["cron", "get", "--id", &cron_id]).await, "name"),
        "hourly"
    );
    dev.ok(&["cron", "rm", "--id", &cron_id]).await;
    assert!(ids(&dev.ok(&["cron", "ls"]).await, "cronid").is_empty());

    tracing::info!("--- generators");
    let add = ["generator", "add", "--name", "batch", "--trigger", "10"];
    let generator = dev.ok(&[&add[..], &["--spec", workflow]].concat()).await;
    let generator_id = str_of(&generator, "generatorid").to_string();
    let by_name = dev.ok(&["generator", "get", "--name", "batch"]).await;
    assert_eq!(str_of(&by_name, "generatorid"), generator_id);
    dev.ok(&["generator", "pack", "--id", &generator_id, "--arg", "x"])
        .await;
    let by_id = dev.ok(&["generator", "get", "--id", &generator_id]).await;
    assert_eq!(by_id["queuesize"], 1, "{by_id}");
    dev.ok(&["generator", "rm", "--id", &generator_id]).await;
    assert!(ids(&dev.ok(&["generator", "ls"]).await, "generatorid").is_empty());

    tracing::info!("--- functions");
    let description = ["--description", "says hello"];
    let register = ["function", "register", "--name", "hello"];
    let function = dev.ok(&[&register[..], &description].concat()).await;
    assert_eq!(
        str_of(&function, "executorname"),
        dev.var("COLONIES_EXECUTOR_NAME")
    );
    let function_id = str_of(&function, "functionid").to_string();
    let listed = dev.ok(&["function", "ls"]).await;
    assert_eq!(ids(&listed, "funcname"), ["hello"]);
    assert_eq!(listed[0]["counter"], 0);
    let executor = dev.var("COLONIES_EXECUTOR_NAME");
    let listed = dev.ok(&["function", "ls", "--executor", executor]).await;
    assert_eq!(ids(&listed, "functionid"), [function_id.as_str()]);
    dev.ok(&["function", "rm", "--id", &function_id]).await;
    assert!(ids(&dev.ok(&["function", "ls"]).await, "funcname").is_empty());

    tracing::info!("--- locations");
    let add = [
        "location", "add", "--name", "lab", "--long", "-73.9", "--lat", "40.7",
    ];
    let location = dev.ok(&add).await;
    assert_eq!(location["long"], -73.9);
    assert_eq!(ids(&dev.ok(&["location", "ls"]).await, "name"), ["lab"]);
    let shown = dev.ok(&["location", "get", "--name", "lab"]).await;
    assert_eq!(shown["lat"], 40.7);
    dev.ok(&["location", "rm", "--name", "lab"]).await;
    assert!(ids(&dev.ok(&["location", "ls"]).await, "name").is_empty());

    tracing::info!("--- blueprint definitions and ColonyFS");
    let definition = dev.file(
        "definition.json",
        &serde_json::json!({
            "kind": "Db",
            "metadata": {"name": "dbs"},
            "spec": {"names": {"kind": "Db"},
                     "handler": {"executorType": "db-op", "functionName": "reconcile"}},
        }),
    );
    dev.ok(&[
        "blueprint",
        "definition",
        "add",
        "--spec",
        text(&definition),
    ])
    .await;
    let listed = dev.ok(&["blueprint", "definition", "ls"]).await;
    assert_eq!(listed[0]["metadata"]["name"], "dbs", "{listed}");
    dev.ok(&["blueprint", "definition", "rm", "--name", "dbs"])
        .await;
    assert_eq!(
        dev.ok(&["fs", "snapshot", "ls"]).await,
        serde_json::json!([])
    );

    tracing::info!("--- bad input");
    let error = dev
        .fails(&["cron", "add", "--name", "never", "--spec", workflow])
        .await;
    assert!(
        error.contains("--cron") && error.contains("--interval"),
        "{error}"
    );
    let missing = dev.dir.path().join("missing.json");
    let error = dev
        .fails(&["workflow", "submit", "--spec", text(&missing)])
        .await;
    assert!(error.contains("missing.json"), "{error}");
    let not_json = dev.file("broken.json", &Value::from("not a workflow"));
    let add = [
        "cron",
        "add",
        "--name",
        "broken",
        "--interval",
        "60",
        "--spec",
    ];
    let error = dev.fails(&[&add[..], &[text(&not_json)]].concat()).await;
    assert!(
        error.contains("broken.json is not a valid workflow spec"),
        "{error}"
    );
    let status = ["blueprint", "status", "--name", "x", "--status", "{oops"];
    let error = dev.fails(&status).await;
    assert!(error.contains("--status is not valid JSON"), "{error}");
    assert!(ids(&dev.ok(&["cron", "ls"]).await, "cronid").is_empty());
}

/// - `colonymesh info` shows the node and its mesh: ready, one member that leads, the colony
///   and its executors; without the server owner key it still shows the node, and says what
///   is missing
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_summarizes_node_and_mesh() {
    let dev = Dev::start().await;
    let info = dev.ok(&["info"]).await;
    assert_eq!(info["ready"], true, "{info}");
    let cluster = &info["cluster"];
    assert_eq!(cluster["nodes"].as_array().unwrap().len(), 1, "{info}");
    assert_eq!(cluster["leader"]["name"], cluster["servedby"], "{info}");
    assert_eq!(info["statistics"]["colonies"], 1, "{info}");
    assert!(
        info["statistics"]["executors"].as_i64().unwrap() >= 1,
        "{info}"
    );
    let mut command = dev.command(&["info"]);
    command.env_remove("COLONIES_SERVER_PRVKEY");
    let output = command.output().await.unwrap();
    assert!(output.status.success());
    let partial: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(partial["cluster"], Value::Null);
    assert!(partial["note"]
        .as_str()
        .unwrap()
        .contains("COLONIES_SERVER_PRVKEY"));
    assert_eq!(partial["server"]["backends"][0]["tls"], false);
}

/// - right after `colonymesh dev` prints its settings, `fleet run inventory` finds the node's
///   own executor and runs on it (the settings come only once it is registered), 20 times in
///   a row with a fresh node each time; `/ready` answers 200 by then
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_inventory_right_after_dev_prints_its_settings() {
    for attempt in 0..20 {
        let dev = Dev::start().await;
        let rows = dev.ok(&["fleet", "run", "inventory"]).await;
        let rows = rows.as_array().unwrap_or_else(|| panic!("rows: {rows}"));
        assert_eq!(rows.len(), 1, "attempt {attempt}: {rows:?}");
        assert_eq!(
            rows[0]["state"], "successful",
            "attempt {attempt}: {rows:?}"
        );
        assert!(
            rows[0]["output"][0]["cpus"].as_u64().unwrap_or(0) > 0,
            "attempt {attempt}: {rows:?}"
        );
        let url = format!(
            "http://{}:{}/ready",
            dev.var("COLONIES_SERVER_HOST"),
            dev.var("COLONIES_SERVER_PORT")
        );
        let ready = reqwest::get(&url).await.expect("GET /ready");
        assert_eq!(ready.status().as_u16(), 200, "attempt {attempt}");
    }
}
