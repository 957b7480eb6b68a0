//! Built-in executors end to end: shell functions run by a node's own executor (output,
//! failure, timeout with the process group killed, log streaming, clean environment,
//! unprivileged user), registration by approval, the Docker executor with an image built
//! here, fleet queries on a 3-node mesh, and a process finishing on another node after the
//! node running it died.

use node::client::Client;
use node::config::{ExecutorConfig, ExecutorKind, OutputFormat, ShellFunction};
use proto::msgs::{ExecutorMsg, ExecutorNameMsg, GetLogsMsg, ProcessIdMsg, SubmitMsg};
use proto::process::process_state as ps;
use proto::{Executor, FunctionSpec, Log, PrivateKey, Process, Request};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tests::cluster::Cluster;
use tests::{wait_for, Options, TestNode};

fn program(program: &str, args: &[&str]) -> ShellFunction {
    ShellFunction {
        program: Some(program.into()),
        args: args.iter().map(|a| a.to_string()).collect(),
        ..ShellFunction::default()
    }
}

fn script(text: &str) -> ShellFunction {
    ShellFunction {
        script: Some(text.into()),
        ..ShellFunction::default()
    }
}

fn shell_executor(
    colony_key: Option<&PrivateKey>,
    functions: Vec<(&str, ShellFunction)>,
) -> ExecutorConfig {
    ExecutorConfig {
        name: "{node}-shell".into(),
        kind: ExecutorKind::Shell,
        executor_type: String::new(),
        colony: "dev".into(),
        colony_prvkey: colony_key.map(PrivateKey::to_hex),
        colony_prvkey_file: None,
        concurrency: 2,
        max_exec_seconds: 2,
        run_as: None,
        functions: functions
            .into_iter()
            .map(|(name, f)| (name.to_string(), f))
            .collect::<BTreeMap<_, _>>(),
        docker_socket: None,
    }
}

fn spec(funcname: &str, executortype: &str, args: Value) -> FunctionSpec {
    let mut spec = TestNode::spec(funcname, executortype);
    spec.args = serde_json::from_value(args).expect("args");
    spec
}

async fn submit(client: &Client, key: &PrivateKey, spec: FunctionSpec) -> Process {
    client
        .call(&Request::Submit(SubmitMsg { spec }), key)
        .await
        .expect("submit")
}

async fn get(client: &Client, key: &PrivateKey, processid: &str) -> Process {
    let request = Request::GetProcess(ProcessIdMsg {
        processid: processid.into(),
    });
    client.call(&request, key).await.expect("get process")
}

/// Polls until the process is closed; a read refused meanwhile (a node without a leader
/// during a failover answers 503) is retried.
async fn closed(client: &Client, key: &PrivateKey, processid: &str, limit: Duration) -> Process {
    let request = Request::GetProcess(ProcessIdMsg {
        processid: processid.into(),
    });
    wait_for("the process to close", limit, || async {
        let p: Process = client.call(&request, key).await.ok()?;
        matches!(p.state, ps::SUCCESS | ps::FAILED).then_some(p)
    })
    .await
}

async fn logs(client: &Client, key: &PrivateKey, processid: &str) -> Vec<String> {
    let request = Request::GetLogs(GetLogsMsg {
        colonyname: "dev".into(),
        processid: processid.into(),
        count: 100,
        ..GetLogsMsg::default()
    });
    let logs: Vec<Log> = client.call(&request, key).await.expect("get logs");
    logs.iter()
        .flat_map(|l| l.message.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// A directory anyone may write (functions may run as `nobody`), inside the test's dir.
fn shared_dir(parent: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dir = parent.join("shared");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_executor_runs_functions_end_to_end() {
    let shared = tempfile::tempdir().expect("temp dir");
    let shared_path = shared_dir(shared.path());
    let grandchild = shared_path.join("grandchild.pid");
    let node = TestNode::start_configured(Options::default(), |config, colony| {
        let json_out = ShellFunction {
            output: OutputFormat::Json,
            ..script("printf '{\"sum\": %s}' $(($1 + $2))")
        };
        let background = format!("sleep 300 & echo $! > {}; sleep 300", grandchild.display());
        config.executors.push(shell_executor(
            Some(colony),
            vec![
                ("echo", program("/bin/echo", &["{args}"])),
                ("fail", script("echo partial; echo oops >&2; exit 3")),
                ("add", json_out),
                ("hang", script(&background)),
                (
                    "stream",
                    script("echo line1; echo line2; echo line3; sleep 1; echo end"),
                ),
                ("env", program("/usr/bin/env", &[])),
                ("whoami", program("/usr/bin/id", &["-u"])),
                ("pwd", script("pwd; touch here; ls")),
            ],
        ));
    })
    .await;
    let (client, key) = (&node.client, &node.executor);
    let limit = Duration::from_secs(30);

    // Success: argv from args, stdout lines as output.
    let p = submit(
        client,
        key,
        spec("echo", "shell", json!(["hello", "$HOME;", 3])),
    )
    .await;
    let p = closed(client, key, &p.processid, limit).await;
    assert_eq!(p.state, ps::SUCCESS, "{:?}", p.errors);
    assert_eq!(p.output, vec![json!("hello $HOME; 3")]);

    // JSON output.
    let p = submit(client, key, spec("add", "shell", json!(["2", "40"]))).await;
    let p = closed(client, key, &p.processid, limit).await;
    assert_eq!(p.output, vec![json!({"sum": 42})], "{:?}", p.errors);

    // Failure: exit status and the tail of stderr; stdout still logged.
    let p = submit(client, key, spec("fail", "shell", json!([]))).await;
    let p = closed(client, key, &p.processid, limit).await;
    assert_eq!(p.state, ps::FAILED);
    assert_eq!(
        p.errors,
        vec!["exit status 3".to_string(), "oops".to_string()]
    );
    let lines = logs(client, key, &p.processid).await;
    assert!(lines.contains(&"partial".to_string()), "{lines:?}");

    // Timeout (the executor's max_exec_seconds, 2 s): the whole group is killed.
    let p = submit(client, key, spec("hang", "shell", json!([]))).await;
    let p = closed(client, key, &p.processid, limit).await;
    assert_eq!(p.state, ps::FAILED);
    assert!(
        p.errors[0].contains("timed out after 2 s"),
        "{:?}",
        p.errors
    );
    let pid = std::fs::read_to_string(&grandchild).expect("grandchild pid");
    let proc_dir = format!("/proc/{}", pid.trim());
    wait_for("the background grandchild to be killed", limit, || async {
        let state = std::fs::read_to_string(format!("{proc_dir}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for its reaper.
        (state.is_empty() || state.contains(") Z ")).then_some(())
    })
    .await;

    // Log lines arrive while the process still runs.
    let p = submit(client, key, spec("stream", "shell", json!([]))).await;
    wait_for("streamed lines while running", limit, || async {
        let lines = logs(client, key, &p.processid).await;
        let running = get(client, key, &p.processid).await.state == ps::RUNNING;
        (lines == ["line1", "line2", "line3"] && running).then_some(())
    })
    .await;
    let p = closed(client, key, &p.processid, limit).await;
    assert_eq!(p.state, ps::SUCCESS);
    assert_eq!(
        logs(client, key, &p.processid).await,
        ["line1", "line2", "line3", "end"]
    );

    // A clean environment: nothing of the node's, plus the spec's env.
    let mut env_spec = spec("env", "shell", json!([]));
    env_spec.env = serde_json::from_value(json!({"GREETING": "hi there"})).expect("env");
    let p = submit(client, key, env_spec).await;
    let p = closed(client, key, &p.processid, limit).await;
    let mut names: Vec<String> = p
        .output
        .iter()
        .filter_map(|v| v.as_str()?.split_once('=').map(|(n, _)| n.to_string()))
        .collect();
    names.sort();
    let expected = [
        "COLONIES_COLONY_NAME",
        "COLONIES_PROCESS_ID",
        "GREETING",
        "HOME",
        "LANG",
        "PATH",
    ];
    assert_eq!(names, expected, "{:?}", p.output);
    assert!(p.output.contains(&json!("GREETING=hi there")));
    assert!(p
        .output
        .contains(&json!(format!("COLONIES_PROCESS_ID={}", p.processid))));

    // As root, functions run as an unprivileged user (nobody); else as the node's user.
    let p = submit(client, key, spec("whoami", "shell", json!([]))).await;
    let p = closed(client, key, &p.processid, limit).await;
    let uid = p.output[0].as_str().expect("uid").to_string();
    if is_root() {
        assert_ne!(uid, "0", "a root node must not run functions as root");
    } else {
        let own = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
        assert_eq!(uid, own.expect("own uid").to_string());
    }

    // A fresh work directory per process, removed afterwards.
    let p = submit(client, key, spec("pwd", "shell", json!([]))).await;
    let p = closed(client, key, &p.processid, limit).await;
    assert_eq!(p.state, ps::SUCCESS, "{:?}", p.errors);
    let dir = p.output[0].as_str().expect("work dir").to_string();
    assert!(dir.ends_with(&p.processid), "{dir}");
    assert_eq!(p.output[1], json!("here"));
    assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");

    // An unknown function fails with its name.
    let p = submit(client, key, spec("nosuch", "shell", json!([]))).await;
    let p = closed(client, key, &p.processid, limit).await;
    assert!(
        p.errors[0].contains("\"nosuch\" is not offered"),
        "{:?}",
        p.errors
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_without_colony_key_waits_for_approval() {
    let node = TestNode::start_configured(Options::default(), |config, _| {
        config.mesh.status_ms = 100;
        config.executors.push(shell_executor(
            None,
            vec![("echo", program("/bin/echo", &["{args}"]))],
        ));
    })
    .await;
    let (client, key) = (&node.client, &node.executor);
    let name = format!("{}-shell", node.handle.info.name);
    // Its id is in its key file; the colony owner adds and approves it.
    let key_file = node
        .dir
        .path()
        .join("executors")
        .join(format!("{name}.key"));
    let executor_key = wait_for(
        "the executor's key file",
        Duration::from_secs(10),
        || async {
            let text = std::fs::read_to_string(&key_file).ok()?;
            PrivateKey::from_hex(text.trim()).ok()
        },
    )
    .await;
    let p = submit(client, key, spec("echo", "shell", json!(["approved"]))).await;
    let executor = Executor {
        executorid: executor_key.id(),
        executortype: "shell".into(),
        executorname: name.clone(),
        colonyname: "dev".into(),
        ..Executor::default()
    };
    let add = Request::AddExecutor(ExecutorMsg { executor });
    let _: Executor = client.call(&add, &node.colony).await.expect("add");
    // Added but not approved: nothing runs.
    tokio::task::yield_now().await;
    assert_eq!(get(client, key, &p.processid).await.state, ps::WAITING);
    let approve = Request::ApproveExecutor(ExecutorNameMsg {
        colonyname: "dev".into(),
        executorname: name,
    });
    let _: Value = client.call(&approve, &node.colony).await.expect("approve");
    let p = closed(client, key, &p.processid, Duration::from_secs(30)).await;
    assert_eq!(p.output, vec![json!("approved")]);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_executor_runs_a_container() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docker/build-test-image");
    let built = std::process::Command::new(script)
        .status()
        .expect("run build-test-image");
    assert!(
        built.success(),
        "building the test image failed (is Docker running?)"
    );
    let node = TestNode::start_configured(Options::default(), |config, colony| {
        config.executors.push(ExecutorConfig {
            kind: ExecutorKind::Docker,
            name: String::new(),
            functions: BTreeMap::new(),
            max_exec_seconds: 30,
            ..shell_executor(Some(colony), Vec::new())
        });
    })
    .await;
    let (client, key) = (&node.client, &node.executor);
    let mut run = spec("execute", "docker", json!(["mesh"]));
    run.kwargs = Some(
        serde_json::from_value(json!({
            "image": "colonymesh-test:local",
            "cmd": "echo hello $1; echo to-stderr >&2; echo $COLOR",
        }))
        .expect("kwargs"),
    );
    run.env = serde_json::from_value(json!({"COLOR": "blue"})).expect("env");
    run.conditions.mem = "64Mi".into();
    run.conditions.cpu = "500m".into();
    let p = submit(client, key, run).await;
    let p = closed(client, key, &p.processid, Duration::from_secs(60)).await;
    assert_eq!(p.state, ps::SUCCESS, "{:?}", p.errors);
    assert_eq!(p.output, vec![json!("hello mesh"), json!("blue")]);
    let lines = logs(client, key, &p.processid).await;
    for line in ["hello mesh", "to-stderr", "blue"] {
        assert!(lines.contains(&line.to_string()), "{line} not in {lines:?}");
    }
    let mut failing = spec("execute", "docker", json!([]));
    failing.kwargs = Some(
        serde_json::from_value(json!({"image": "colonymesh-test:local", "cmd": "exit 7"}))
            .expect("kwargs"),
    );
    let p = submit(client, key, failing).await;
    let p = closed(client, key, &p.processid, Duration::from_secs(60)).await;
    assert_eq!(p.state, ps::FAILED);
    assert_eq!(p.errors[0], "exit status 7");
    node.stop().await;
}

/// The fleet executors of a 3-node mesh: `colonymesh nodes` and `fleet run inventory`
/// through the real CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_run_inventory_on_three_nodes() {
    let cluster = Cluster::start_with_colony(3, |config, colony| {
        config.mesh.status_ms = 200;
        config.fleet.colony = "dev".into();
        config.fleet.colony_prvkey = Some(colony.to_hex());
        config.mesh.site = format!("site-{}", config.mesh.name);
    })
    .await;
    let port = cluster.node(1).api_addr.port().to_string();
    let env = [
        ("COLONIES_SERVER_HOST", "127.0.0.1".to_string()),
        ("COLONIES_SERVER_PORT", port),
        ("COLONIES_SERVER_PRVKEY", cluster.server.to_hex()),
        ("COLONIES_COLONY_NAME", "dev".to_string()),
        ("COLONIES_PRVKEY", cluster.executor.to_hex()),
    ];
    let cli = |args: &'static [&'static str]| {
        let env = env.clone();
        async move {
            let mut command = tokio::process::Command::new(tests::colonymesh_binary());
            command
                .args(args)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
            let output = tokio::time::timeout(Duration::from_secs(120), command.output())
                .await
                .expect("CLI within 120 s")
                .expect("run CLI");
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };
    // Every node reports itself healthy with its node executor ready.
    let mut last = String::new();
    let healthy = async {
        loop {
            let (ok, stdout, stderr) = cli(&["--json", "nodes"]).await;
            last = format!("{stdout}{stderr}");
            let nodes: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_default();
            let ready = nodes.iter().filter(|n| {
                n["up"] == json!(true)
                    && n["status"]["executors"][0]["state"] == json!("ready")
                    && n["status"]["cpus"].as_u64().unwrap_or(0) > 0
            });
            if ok && ready.count() == 3 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let waited = tokio::time::timeout(Duration::from_secs(60), healthy).await;
    assert!(
        waited.is_ok(),
        "3 healthy nodes with ready node executors; last: {last}"
    );
    let (ok, table, stderr) = cli(&["nodes"]).await;
    assert!(ok, "{stderr}");
    for name in ["n0", "n1", "n2"] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(name) && l.contains(" up ")),
            "{table}"
        );
    }

    let (ok, stdout, stderr) = cli(&["--json", "fleet", "run", "inventory"]).await;
    assert!(ok, "fleet run failed: {stderr}");
    let rows: Vec<Value> = serde_json::from_str(&stdout).expect("JSON rows");
    let nodes: Vec<&str> = rows.iter().filter_map(|r| r["node"].as_str()).collect();
    assert_eq!(nodes, ["n0", "n1", "n2"]);
    for row in &rows {
        assert_eq!(row["state"], json!("successful"), "{row}");
        let inventory = &row["output"][0];
        assert!(inventory["cpus"].as_u64().unwrap_or(0) > 0, "{inventory}");
        assert!(
            inventory["kernel"].as_str().is_some_and(|k| !k.is_empty()),
            "{inventory}"
        );
    }
    // Selection by name and by site.
    let (ok, stdout, stderr) = cli(&["--json", "fleet", "run", "inventory", "--nodes", "n2"]).await;
    assert!(ok, "{stderr}");
    let rows: Vec<Value> = serde_json::from_str(&stdout).expect("JSON rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["node"], json!("n2"));
    let (ok, stdout, _) = cli(&["--json", "fleet", "run", "inventory", "--site", "site-n1"]).await;
    assert!(ok);
    let rows: Vec<Value> = serde_json::from_str(&stdout).expect("JSON rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["node"], json!("n1"));
    // `exec` is off unless enabled: every node fails it, and the CLI says so.
    let (ok, stdout, stderr) = cli(&["--json", "fleet", "run", "exec", "/bin/true"]).await;
    assert!(!ok && stderr.contains("3 of 3 nodes failed"), "{stderr}");
    let rows: Vec<Value> = serde_json::from_str(&stdout).expect("JSON rows");
    assert!(rows.iter().all(|r| r["errors"][0]
        .as_str()
        .unwrap_or("")
        .contains("not enabled")));
    let (ok, _, stderr) = cli(&["fleet", "run", "inventory", "--nodes", "nosuch"]).await;
    assert!(!ok && stderr.contains("\"nosuch\""), "{stderr}");
    cluster.shutdown().await;
}

/// A node dies while its shell executor runs a process: the leader re-queues the process
/// once the node is silent past `release_executors_ms`, and another node's executor
/// finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_of_a_dead_node_finishes_on_another() {
    let mut cluster = Cluster::start_with_colony(3, |config, colony| {
        config.mesh.status_ms = 250;
        config.mesh.status_down_ms = 1_000;
        config.mesh.release_executors_ms = 2_000;
        let mut executor =
            shell_executor(Some(colony), vec![("work", script("sleep 2; echo done"))]);
        executor.max_exec_seconds = 60;
        config.executors.push(executor);
    })
    .await;
    let key = cluster.executor.clone();
    let client = cluster.client(0);
    let p = submit(&client, &key, spec("work", "shell", json!([]))).await;
    let request = Request::GetProcess(ProcessIdMsg {
        processid: p.processid.clone(),
    });
    let running = wait_for("the process to run", Duration::from_secs(30), || async {
        let p: Process = client.call(&request, &key).await.ok()?;
        (p.state == ps::RUNNING).then_some(p)
    })
    .await;
    // Which node's executor took it?
    let status: Vec<Executor> = client
        .call(
            &Request::GetExecutors(proto::msgs::ColonyNameMsg {
                colonyname: "dev".into(),
            }),
            &key,
        )
        .await
        .expect("executors");
    let first = status
        .iter()
        .find(|e| e.executorid == running.assignedexecutorid)
        .expect("the assigned executor")
        .executorname
        .clone();
    let victim: usize = first
        .trim_start_matches('n')
        .trim_end_matches("-shell")
        .parse()
        .expect("node index");
    cluster.crash(victim).await;
    let survivor = (victim + 1) % 3;
    let client = cluster.client(survivor);
    let p = closed(&client, &key, &p.processid, Duration::from_secs(60)).await;
    assert_eq!(p.state, ps::SUCCESS, "{:?}", p.errors);
    assert_eq!(p.output, vec![json!("done")]);
    assert_ne!(
        p.assignedexecutorid, running.assignedexecutorid,
        "finished elsewhere"
    );
    cluster.shutdown().await;
}
