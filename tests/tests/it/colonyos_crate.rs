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
    node.stop().await;
}
