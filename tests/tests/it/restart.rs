//! Durability across `kill -9`: the real `colonymesh dev` binary is killed without warning and
//! restarted on the same data dir; acknowledged writes and the dev identity survive.

use node::client::Client;
use proto::msgs::{AssignMsg, CloseSuccessfulMsg, ProcessIdMsg, SubmitMsg};
use proto::process::process_state as ps;
use proto::{PrivateKey, Process, Request};
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tests::TestNode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts `colonymesh dev` and returns it with the `export` lines it printed.
async fn start_dev(data_dir: &Path) -> (Child, HashMap<String, String>) {
    let mut command = Command::new(tests::colonymesh_binary());
    command
        .args(["dev", "--api-port", "0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("COLONIES_")) {
        command.env_remove(name);
    }
    let mut child = command.spawn().expect("spawn colonymesh dev");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut exports = HashMap::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some((name, value)) =
                line.strip_prefix("export ").and_then(|l| l.split_once('='))
            {
                exports.insert(name.to_string(), value.to_string());
                if name == "COLONIES_PRVKEY" {
                    return;
                }
            }
        }
        panic!("colonymesh dev exited before printing its exports");
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("exports within 60 s");
    (child, exports)
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
