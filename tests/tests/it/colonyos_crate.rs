//! The published `colonyos` crate (a client none of us wrote) drives submit -> assign -> close
//! against a real node.

use tests::TestNode;

/// - submit with `colonyos::submit`, assign with `colonyos::assign`, close with `colonyos::close`
/// - `colonyos::get_process` sees the process successful and assigned to the executor
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colonyos_crate_lifecycle() {
    let node = TestNode::start().await;
    // The crate keeps its server URL in a global; this is the only test that sets it.
    colonyos::set_server_url(&format!(
        "http://127.0.0.1:{}/api",
        node.handle.api_addr.port()
    ));
    let key = node.executor.to_hex();
    let mut spec = colonyos::core::FunctionSpec::new("echo", "cli", "dev");
    spec.args = vec!["hello".into()];
    spec.maxexectime = -1;
    spec.maxretries = 3;
    let submitted = colonyos::submit(&spec, &key).await.expect("submit");
    assert_eq!(submitted.state, colonyos::core::WAITING);
    let assigned = colonyos::assign("dev", 10, &key).await.expect("assign");
    assert_eq!(assigned.processid, submitted.processid);
    assert_eq!(assigned.state, colonyos::core::RUNNING);
    colonyos::close(&assigned.processid, &key)
        .await
        .expect("close");
    let closed = colonyos::get_process(&assigned.processid, &key)
        .await
        .expect("get");
    assert_eq!(closed.state, colonyos::core::SUCCESS);
    assert_eq!(closed.assignedexecutorid, node.executor.id());
    assert_eq!(closed.spec.args, vec![serde_json::Value::from("hello")]);
    workflow_runs_in_dependency_order(&key).await;
    subscription_sees_the_process_succeed(&key).await;
    logs_channels_functions_and_statistics(&key, &node.executor.id()).await;
    node.stop().await;
}

/// - `add_log` / `get_logs` on a running process, `channel_append` / `channel_read` on its
///   declared channel, `add_function` / `get_functions_by_executor` / `remove_function`, and
///   `get_statistics` all work through the crate's own message builders
async fn logs_channels_functions_and_statistics(key: &str, executorid: &str) {
    let mut spec = colonyos::core::FunctionSpec::new("chatty", "cli", "dev");
    spec.maxexectime = -1;
    spec.channels = vec!["chat".into()];
    let submitted = colonyos::submit(&spec, key).await.expect("submit");
    let running = colonyos::assign("dev", 10, key).await.expect("assign");
    assert_eq!(running.processid, submitted.processid);
    let log = colonyos::core::Log {
        processid: running.processid.clone(),
        colonyname: "dev".into(),
        executorname: "worker".into(),
        message: "hello from the crate".into(),
        timestamp: 0,
    };
    colonyos::add_log(&log, key).await.expect("add log");
    let logs = colonyos::get_logs("dev", &running.processid, "", 10, 0, key)
        .await
        .expect("get logs");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].message, "hello from the crate");
    assert!(logs[0].timestamp > 0);
    colonyos::channel_append(&running.processid, "chat", 1, "ping", "", 0, key)
        .await
        .expect("append");
    let entries = colonyos::channel_read(&running.processid, "chat", 0, 10, key)
        .await
        .expect("read");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].payload_as_string(), "ping");
    assert_eq!(entries[0].senderid, executorid);
    colonyos::close(&running.processid, key)
        .await
        .expect("close");
    let function = colonyos::core::Function {
        functionid: String::new(),
        executorname: "worker".into(),
        executortype: "cli".into(),
        colonyname: "dev".into(),
        funcname: "chatty".into(),
        counter: 0,
        minwaittime: 0.0,
        maxwaittime: 0.0,
        minexectime: 0.0,
        maxexectime: 0.0,
        avgwaittime: 0.0,
        avgexectime: 0.0,
    };
    let added = colonyos::add_function(&function, key)
        .await
        .expect("add function");
    let mine = colonyos::get_functions_by_executor("dev", "worker", key)
        .await
        .expect("functions");
    assert!(mine.iter().any(|f| f.functionid == added.functionid));
    colonyos::remove_function(&added.functionid, key)
        .await
        .expect("remove function");
    let stats = colonyos::get_statistics("dev", key)
        .await
        .expect("statistics");
    assert!(stats.successfulprocesses >= 1, "{stats:?}");
}

/// - `colonyos::subscribe_process` (WebSocket `/pubsub`) for state SUCCESS returns once another
///   task assigned and closed the process; subscribing again returns at once
async fn subscription_sees_the_process_succeed(key: &str) {
    let mut spec = colonyos::core::FunctionSpec::new("watched", "cli", "dev");
    spec.maxexectime = -1;
    let submitted = colonyos::submit(&spec, key).await.expect("submit");
    let watcher = {
        let (process, key) = (submitted.clone(), key.to_string());
        tokio::spawn(async move {
            colonyos::subscribe_process(&process, colonyos::core::SUCCESS, 10, &key).await
        })
    };
    let assigned = colonyos::assign("dev", 10, key).await.expect("assign");
    assert_eq!(assigned.processid, submitted.processid);
    colonyos::close(&assigned.processid, key)
        .await
        .expect("close");
    let waited = tokio::time::timeout(std::time::Duration::from_secs(15), watcher)
        .await
        .expect("the subscription ends within its timeout")
        .expect("watcher task");
    waited.expect("subscription reports success");
    colonyos::subscribe_process(&submitted, colonyos::core::SUCCESS, 10, key)
        .await
        .expect("already successful");
    let stranger = tests::test_key().to_hex();
    let refused = colonyos::subscribe_process(&submitted, colonyos::core::SUCCESS, 10, &stranger);
    let error = refused.await.expect_err("a non-member gets an error frame");
    assert!(error.to_string().contains("not a member"), "{error}");
}

/// - `colonyos::submit_workflow` of `a -> b -> c` returns the graph with `a` as its root
/// - each process is assigned only after its parent closed, with the parent's output as input
/// - `colonyos::get_processgraph` and `get_processgraphs` see the graph successful
async fn workflow_runs_in_dependency_order(key: &str) {
    let node = |name: &str, parents: &[&str]| {
        let mut spec = colonyos::core::FunctionSpec::new(name, "cli", "dev");
        spec.nodename = name.into();
        spec.maxexectime = -1;
        spec.conditions.dependencies = parents.iter().map(|p| p.to_string()).collect();
        spec
    };
    let workflow = colonyos::core::WorkflowSpec {
        colonyname: "dev".into(),
        functionspecs: vec![node("c", &["b"]), node("b", &["a"]), node("a", &[])],
    };
    let graph = colonyos::submit_workflow(&workflow, key)
        .await
        .expect("submit workflow");
    assert_eq!(graph.processids.len(), 3);
    assert_eq!(graph.rootprocessids, vec![graph.processids[2].clone()]);
    let mut previous_output: Option<String> = None;
    for name in ["a", "b", "c"] {
        let p = colonyos::assign("dev", 10, key).await.expect("assign");
        assert_eq!(p.spec.funcname, name);
        let expected: Vec<String> = previous_output.iter().cloned().collect();
        assert_eq!(p.input, expected, "input of {name}");
        let output = format!("out-{name}");
        colonyos::set_output(&p.processid, vec![output.clone()], key)
            .await
            .expect("set output");
        colonyos::close(&p.processid, key).await.expect("close");
        previous_output = Some(output);
    }
    let done = colonyos::get_processgraph(&graph.processgraphid, key)
        .await
        .expect("get graph");
    assert_eq!(done.state, colonyos::core::SUCCESS);
    let listed = colonyos::get_processgraphs("dev", 10, colonyos::core::SUCCESS, key)
        .await
        .expect("list graphs");
    assert!(listed
        .iter()
        .any(|g| g.processgraphid == graph.processgraphid));
}
