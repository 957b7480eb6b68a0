//! The API over TLS against a real node with a self-signed certificate: HTTPS and WSS for a
//! client that trusts it, clear refusals for one that does not, and the CLI through the
//! ColonyOS environment (`COLONIES_TLS=true`) plus `COLONIES_TLS_CA`.

use node::client::{Client, ClientError};
use node::tls::ClientTls;
use proto::msgs::{AssignMsg, CloseSuccessfulMsg, EmptyMsg, SubmitMsg, SubscribeProcessMsg};
use proto::process::process_state as ps;
use proto::{Process, Request};
use std::time::Duration;
use tests::{Options, TestNode};

/// - provisioning, submit, assign and close work over HTTPS; a WSS subscription sees the
///   close; `getserverinfomsg` says the API is TLS
/// - plain HTTP to the TLS port, and a client trusting only the system's roots, fail with
///   transport errors that say why; skip-verify connects
/// - the CLI with `COLONIES_TLS=true` and `COLONIES_TLS_CA` reads the process
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_https_and_wss() {
    let node = TestNode::start_with(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    let submit = Request::Submit(SubmitMsg {
        spec: TestNode::spec("echo", "cli"),
    });
    let process: Process = node.client.call(&submit, &node.executor).await.unwrap();
    let watch = Request::SubscribeProcess(SubscribeProcessMsg {
        colonyname: "dev".into(),
        processid: process.processid.clone(),
        state: ps::SUCCESS,
        timeout: 20,
        ..Default::default()
    });
    let mut frames = node.client.subscribe(&watch, &node.executor).await.unwrap();
    let assign = Request::Assign(AssignMsg {
        colonyname: "dev".into(),
        timeout: 5,
        ..AssignMsg::default()
    });
    node.client
        .assign(&assign, &node.executor, 5)
        .await
        .unwrap();
    let close = Request::CloseSuccessful(CloseSuccessfulMsg {
        processid: process.processid.clone(),
        out: vec!["over tls".into()],
    });
    let _: serde_json::Value = node.client.call(&close, &node.executor).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), frames.next())
        .await
        .expect("a frame in time")
        .expect("a frame before the close")
        .unwrap();
    let seen: Process = serde_json::from_str(&frame).unwrap();
    assert_eq!(
        (seen.processid.as_str(), seen.state),
        (process.processid.as_str(), ps::SUCCESS)
    );
    let info: serde_json::Value = node
        .client
        .call(&Request::GetServerInfo(EmptyMsg {}), &node.executor)
        .await
        .unwrap();
    assert_eq!(info["backends"][0]["tls"], true, "{info}");

    let port = node.handle.api_addr.port();
    let version = Request::GetServerInfo(EmptyMsg {});
    let plain = Client::new("127.0.0.1", port, false);
    let refused = plain
        .call::<serde_json::Value>(&version, &node.executor)
        .await;
    assert!(
        matches!(refused, Err(ClientError::Transport { .. })),
        "{refused:?}"
    );
    let untrusting = Client::new("localhost", port, true);
    let refused = untrusting
        .call::<serde_json::Value>(&version, &node.executor)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("certificate"),
        "names the certificate: {refused}"
    );
    let trust_any = ClientTls {
        ca_file: None,
        skip_verify: true,
    };
    let skipping = Client::with_tls("127.0.0.1", port, Some(&trust_any)).unwrap();
    let _: serde_json::Value = skipping.call(&version, &node.executor).await.unwrap();

    let ca = node.ca_file.clone().unwrap();
    let env = [
        ("COLONIES_SERVER_HOST", "localhost".to_string()),
        ("COLONIES_SERVER_HTTP_PORT", port.to_string()),
        ("COLONIES_TLS", "true".to_string()),
        ("COLONIES_TLS_CA", ca.display().to_string()),
        ("COLONIES_COLONY_NAME", "dev".to_string()),
        ("COLONIES_PRVKEY", node.executor.to_hex()),
    ];
    let args = ["--json", "process", "get", "--id", &process.processid];
    let output = tests::run_colonymesh(&args, &env).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(read["out"][0], "over tls", "{read}");
    node.stop().await;
}

/// - a 3-node mesh whose every node serves TLS: provisioning, a write through one node and a
///   read through another work over HTTPS, and `colonymesh mesh status` (which follows the
///   leader's address) works over TLS with `COLONIES_TLS_CA`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesh_runs_with_tls() {
    let certs = tempfile::tempdir().unwrap();
    let names = ["localhost".to_string(), "127.0.0.1".to_string()];
    let (cert, key) = node::tls::self_signed(&names).unwrap();
    let (cert_path, key_path) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let cluster = tests::cluster::Cluster::start_with(3, |config| {
        config.api.tls_cert = Some(cert_path.clone());
        config.api.tls_key = Some(key_path.clone());
    })
    .await;
    let submit = Request::Submit(SubmitMsg {
        spec: TestNode::spec("echo", "cli"),
    });
    let process: Process = cluster
        .client(0)
        .call(&submit, &cluster.executor)
        .await
        .unwrap();
    let get = Request::GetProcess(proto::msgs::ProcessIdMsg {
        processid: process.processid.clone(),
    });
    let read: Process = cluster
        .client(2)
        .call(&get, &cluster.executor)
        .await
        .unwrap();
    assert_eq!(read.processid, process.processid);

    let follower = (cluster.leader().await + 1) % 3;
    let env = [
        ("COLONIES_SERVER_HOST", "127.0.0.1".to_string()),
        (
            "COLONIES_SERVER_HTTP_PORT",
            cluster.node(follower).api_addr.port().to_string(),
        ),
        ("COLONIES_TLS", "true".to_string()),
        ("COLONIES_TLS_CA", cert_path.display().to_string()),
        ("COLONIES_SERVER_PRVKEY", cluster.server.to_hex()),
    ];
    let output = tests::run_colonymesh(&["--json", "mesh", "status"], &env).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("unreachable"),
        "the leader answered over TLS: {stderr}"
    );
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["nodes"].as_array().unwrap().len(), 3, "{status}");
    assert!(
        status["nodes"][0]["matchedindex"].is_u64(),
        "the leader's view: {status}"
    );
    cluster.shutdown().await;
}
