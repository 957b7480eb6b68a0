//! Durability across `kill -9`: the real `colonymesh dev` binary is killed without warning and
//! restarted on the same data dir; acknowledged writes and the dev identity survive.

use node::client::Client;
use proto::msgs::{AssignMsg, CloseSuccessfulMsg, ProcessIdMsg, SubmitMsg};
use proto::process::process_state as ps;
use proto::{PrivateKey, Process, Request};
use std::collections::HashMap;
use std::path::Path;
use tests::TestNode;
use tokio::process::Child;

/// Starts `colonymesh dev` on `data_dir` and returns it with its `export` lines.
async fn start_dev(data_dir: &Path) -> (Child, HashMap<String, String>) {
    tests::start_dev(data_dir, &[]).await
}

fn connect(exports: &HashMap<String, String>) -> (Client, PrivateKey) {
    let port = exports["COLONIES_SERVER_PORT"].parse().expect("port");
    let key = PrivateKey::from_hex(&exports["COLONIES_PRVKEY"]).expect("key");
    (
        Client::new(&exports["COLONIES_SERVER_HOST"], port, false),
        key,
    )
}

/// - a dev node acknowledges a submit and a full submit -> assign -> close
/// - kill -9, restart on the same data dir: same keys, both processes as acknowledged
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, exports) = start_dev(dir.path()).await;
    let (client, key) = connect(&exports);
    let executortype = exports["COLONIES_EXECUTOR_TYPE"].clone();
    tracing::info!("--- write");
    let submit = |name: &str| {
        Request::Submit(SubmitMsg {
            spec: TestNode::spec(name, &executortype),
        })
    };
    let closed: Process = client.call(&submit("closed"), &key).await.unwrap();
    let assign = Request::Assign(AssignMsg {
        colonyname: "dev".into(),
        timeout: 5,
        ..AssignMsg::default()
    });
    assert_eq!(
        client.assign(&assign, &key, 5).await.unwrap().processid,
        closed.processid
    );
    let close = Request::CloseSuccessful(CloseSuccessfulMsg {
        processid: closed.processid.clone(),
        out: vec!["kept".into()],
    });
    let _: serde_json::Value = client.call(&close, &key).await.unwrap();
    let waiting: Process = client.call(&submit("waiting"), &key).await.unwrap();

    tracing::info!("--- kill -9");
    first.kill().await.expect("SIGKILL the node");

    tracing::info!("--- restart and read back");
    let (mut second, again) = start_dev(dir.path()).await;
    assert_eq!(
        again["COLONIES_PRVKEY"], exports["COLONIES_PRVKEY"],
        "dev identity kept"
    );
    assert_eq!(
        again["COLONIES_COLONY_PRVKEY"],
        exports["COLONIES_COLONY_PRVKEY"]
    );
    let (client, key) = connect(&again);
    let get = |id: &str| {
        Request::GetProcess(ProcessIdMsg {
            processid: id.to_string(),
        })
    };
    let closed: Process = client.call(&get(&closed.processid), &key).await.unwrap();
    assert_eq!(
        (closed.state, closed.output),
        (ps::SUCCESS, vec!["kept".into()])
    );
    let waiting: Process = client.call(&get(&waiting.processid), &key).await.unwrap();
    assert_eq!(waiting.state, ps::WAITING);
    let assigned = client.assign(&assign, &key, 5).await.unwrap();
    assert_eq!(
        assigned.processid, waiting.processid,
        "the queue index survived too"
    );
    second.kill().await.expect("stop the node");
}

/// - with a ColonyOS user's keys and names in the environment (the ColonyOS dev keys),
///   `colonymesh dev` uses them instead of making new ones
/// - the server owner key works: it lists the colony it created
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_uses_keys_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        (
            "COLONIES_SERVER_PRVKEY",
            "fcc79953d8a751bf41db661592dc34d30004b1a651ffa0725b03ac227641499d",
        ),
        ("COLONIES_COLONY_NAME", "lab"),
        (
            "COLONIES_COLONY_PRVKEY",
            "ba949fa134981372d6da62b6a56f336ab4d843b22c02a4257dcf7d0d73097514",
        ),
        ("COLONIES_EXECUTOR_NAME", "dev-docker"),
        ("COLONIES_EXECUTOR_TYPE", "container"),
        (
            "COLONIES_PRVKEY",
            "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05",
        ),
    ];
    let (mut child, exports) = tests::start_dev(dir.path(), &env).await;
    for (name, value) in env {
        assert_eq!(exports[name], value, "{name}");
    }
    assert_eq!(
        exports["COLONIES_SERVER_ID"],
        "039231c7644e04b6895471dd5335cf332681c54e27f81fac54f9067b3f2c0103"
    );
    let (client, _) = connect(&exports);
    let server = PrivateKey::from_hex(env[0].1).unwrap();
    let colonies: Vec<proto::Colony> = client
        .call(&Request::GetColonies(proto::msgs::EmptyMsg {}), &server)
        .await
        .unwrap();
    assert_eq!(colonies.len(), 1);
    assert_eq!(colonies[0].name, "lab");
    assert_eq!(
        colonies[0].colonyid,
        "4787a5071856a4acf702b2ffcea422e3237a679c681314113d86139461290cf4"
    );
    child.kill().await.expect("stop the node");
}
