//! Backups against a real node: taken online while clients keep writing, checked, restored
//! into an empty data dir, and served by a new one-node mesh.

use node::clock::{Clock, SystemClock};
use proto::mesh::StateDigestReply;
use proto::msgs::{EmptyMsg, ProcessIdMsg, SubmitMsg};
use proto::{Process, Request, Statistics};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tests::TestNode;

fn submit() -> Request {
    Request::Submit(SubmitMsg {
        spec: TestNode::spec("load", "cli"),
    })
}

async fn take_backup(node: &TestNode, path: &std::path::Path) -> u64 {
    let mut file = tokio::fs::File::create(path).await.unwrap();
    let now = SystemClock.now_nanos() / 1_000_000_000;
    node.client
        .backup(&node.server, now, &mut file)
        .await
        .expect("take a backup")
}

/// - a backup taken while four clients keep submitting holds every process acknowledged
///   before it began, no more than were acknowledged by its end, and its digest is the state
///   digest of what it holds (checked on the restored store)
/// - of a quiet node, a backup has the live node's state digest at the same index
/// - the restored data dir starts a new one-node mesh that serves the processes and takes
///   new writes
/// - a backup request not signed by the server owner is refused
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_identical_state() {
    let node = TestNode::start().await;
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, key) = (node.client.clone(), node.executor.clone());
        let (acked, stop) = (acked.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let process: Process = client.call(&submit(), &key).await.expect("submit");
                acked.lock().unwrap().push(process.processid);
            }
        }));
    }
    tests::wait_for("load to build up", Duration::from_secs(60), || {
        let count = acked.lock().unwrap().len();
        async move { (count >= 200).then_some(()) }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("under-load.cmb");
    let before: Vec<String> = acked.lock().unwrap().clone();
    let bytes = take_backup(&node, &path).await;
    let after = acked.lock().unwrap().len();
    tests::wait_for(
        "more writes after the backup",
        Duration::from_secs(60),
        || {
            let count = acked.lock().unwrap().len();
            async move { (count > after + 20).then_some(()) }
        },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    let total = acked.lock().unwrap().len();
    let file = std::fs::File::open(&path).unwrap();
    let (meta, digest) = node::backup::inspect(file).expect("the backup checks out");
    assert!(
        bytes > 10_000 && meta.applied_index > 0,
        "{bytes} bytes, {meta:?}"
    );

    let data_dir = dir.path().join("restored");
    node::backup::restore_file(&data_dir, &path).expect("restore");
    let store = node::store::Store::open(&data_dir.join("db")).unwrap();
    let (index, restored_digest) = node::raft::state_digest(&store).unwrap();
    assert_eq!(
        restored_digest, digest,
        "the restored state is the state backed up"
    );
    assert_eq!(index, 0, "no raft state restored");
    drop(store);

    let config = tests::test_config(&data_dir, &node.server);
    let restored = node::node::start(config.validate().unwrap(), Arc::new(SystemClock))
        .await
        .expect("a node starts on the restored data dir");
    let client = tests::client_of(&restored);
    let stats: Statistics = client
        .call(&Request::GetStatistics(EmptyMsg {}), &node.server)
        .await
        .unwrap();
    let held = stats.waitingprocesses as usize;
    // Each of the four clients may have one write applied but not yet acknowledged.
    assert!(
        held >= before.len() && held <= after + 4,
        "the backup holds {held} processes: at least the {} acknowledged before it began, \
         at most the {after} acknowledged by its end plus 4 in flight (of {total})",
        before.len()
    );
    for id in before.iter().step_by(17).chain(before.last()) {
        let get = Request::GetProcess(ProcessIdMsg {
            processid: id.clone(),
        });
        let process: Process = client.call(&get, &node.executor).await.expect("restored");
        assert_eq!(&process.processid, id);
    }
    let _: Process = client
        .call(&submit(), &node.executor)
        .await
        .expect("the new mesh takes writes");
    restored.stop().await;

    // A quiet node: the backup's digest is the live state digest at the same index.
    let digest_of = || async {
        let request = Request::GetStateDigest(EmptyMsg {});
        let reply: StateDigestReply = node.client.call(&request, &node.server).await.unwrap();
        (reply.appliedindex, reply.digest)
    };
    let quiet = dir.path().join("quiet.cmb");
    let mut compared = false;
    for _ in 0..5 {
        let live_before = digest_of().await;
        take_backup(&node, &quiet).await;
        let live_after = digest_of().await;
        let (meta, digest) = node::backup::inspect(std::fs::File::open(&quiet).unwrap()).unwrap();
        if live_before == live_after && live_before.0 == meta.applied_index {
            assert_eq!(
                digest, live_before.1,
                "backup and live state agree at the same index"
            );
            compared = true;
            break;
        }
    }
    assert!(compared, "the node never stayed quiet across a backup");

    let stranger = tests::test_key();
    let mut sink = tokio::io::sink();
    let now = SystemClock.now_nanos() / 1_000_000_000;
    let refused = node
        .client
        .backup(&stranger, now, &mut sink)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("only the server owner"),
        "{refused}"
    );
    node.stop().await;
}
