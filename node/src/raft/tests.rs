//! The raft storage adaptors pass openraft's own storage conformance suite over a real
//! RocksDB store; and a one-voter node bootstraps, commits and survives a restart.

use super::log_storage::LogStore;
use super::state_machine::StateMachine;
use super::*;
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use proto::command::{Op, Reply};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("create temp dir");
        let store = Store::open(dir.path()).expect("open store");
        Ok((dir, LogStore::new(store.clone()), state_machine(store)))
    }
}

#[test]
fn storage_passes_openraft_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

fn command(request_id: u8, op: Op) -> Command {
    Command {
        now_nanos: 1_000,
        request_id: format!("{request_id:032x}"),
        caller_id: String::new(),
        op,
    }
}

/// A state machine over `store` with no waiters and no parked long-polls.
fn state_machine(store: Store) -> StateMachine {
    let clock = Arc::new(crate::clock::SystemClock);
    let parking = Arc::new(super::parking::Parking::new(store.clone(), clock));
    StateMachine::new(store, Arc::new(Waiters::new(4)), parking)
}

/// Starts a raft node with a real network on loopback, identity from `key_path`.
async fn start_node(store: Store, key_path: &std::path::Path) -> RaftNode {
    let keypair = net::load_or_create_keypair(key_path).unwrap();
    let peer_id = net::peer_id_of(&keypair);
    let config = net::NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
    };
    let (client, _events, event_loop) = net::new(keypair, &config).unwrap();
    tokio::spawn(event_loop.run(std::future::pending()));
    let me = NodeInfo {
        peer_id,
        ..NodeInfo::default()
    };
    let deps = Deps {
        store,
        waiters: Arc::new(Waiters::new(4)),
        net: client,
        metrics: Default::default(),
        clock: Arc::new(crate::clock::SystemClock),
    };
    RaftNode::start(&RaftConfig::default(), deps, me, true)
        .await
        .unwrap()
}

/// - the commands of one entry apply in order, each seeing the writes of those before it,
///   and each gets its own response
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_applies_in_order_with_one_response_per_command() {
    use openraft::storage::RaftStateMachine;
    use openraft::{Entry, EntryPayload, LogId};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut machine = state_machine(store);
    let (first, second) = ("ab".repeat(32), "cd".repeat(32));
    let entry = Entry::<TypeConfig> {
        log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), 1),
        payload: EntryPayload::Normal(Batch(vec![
            command(
                1,
                Op::InitServer {
                    server_id: first.clone(),
                },
            ),
            command(2, Op::InitServer { server_id: second }),
        ])),
    };
    let responses = machine.apply(vec![entry]).await.unwrap();
    let kept = Response(Ok(Reply::ServerId(first)));
    assert_eq!(responses, vec![vec![kept.clone(), kept]]);
}

/// - many concurrent proposals on a leader all commit, each answered with its own response
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_each_get_their_response() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let node = start_node(store, &dir.path().join("node.key")).await;
    node.wait_ready(Duration::from_secs(10)).await.unwrap();
    let proposals = (0..200u8).map(|i| {
        let node = node.clone();
        let server_id = format!("{i:064x}");
        tokio::spawn(async move {
            let response = node.propose(command(i, Op::InitServer { server_id }));
            response.await.unwrap()
        })
    });
    let mut owners = BTreeSet::new();
    for proposal in proposals.collect::<Vec<_>>() {
        match proposal.await.unwrap().0 {
            Ok(Reply::ServerId(id)) => owners.insert(id),
            other => panic!("unexpected reply {other:?}"),
        };
    }
    assert_eq!(owners.len(), 1, "every proposer saw the one recorded owner");
    let applied = node.status().applied_index.unwrap();
    assert!(applied >= 2, "applied index {applied}");
    node.shutdown().await.unwrap();
}

/// - a fresh one-voter node elects itself and commits a command
/// - after shutdown and restart on the same store, the state is still there
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_voter_commits_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("node.key");
    let server_id = "ab".repeat(32);
    {
        let store = Store::open(&dir.path().join("db")).unwrap();
        let node = start_node(store, &key_path).await;
        node.wait_ready(Duration::from_secs(10)).await.unwrap();
        let response = node.propose(command(
            1,
            Op::InitServer {
                server_id: server_id.clone(),
            },
        ));
        assert_eq!(
            response.await.unwrap().0,
            Ok(Reply::ServerId(server_id.clone()))
        );
        node.shutdown().await.unwrap();
    }
    // openraft's worker tasks release the store shortly after shutdown returns.
    let reopen = async {
        loop {
            match Store::open(&dir.path().join("db")) {
                Ok(store) => return store,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    let store = tokio::time::timeout(Duration::from_secs(10), reopen)
        .await
        .expect("store released");
    let node = start_node(store, &key_path).await;
    node.wait_ready(Duration::from_secs(10)).await.unwrap();
    let other = "cd".repeat(32);
    let response = node
        .propose(command(2, Op::InitServer { server_id: other }))
        .await
        .unwrap();
    assert_eq!(
        response.0,
        Ok(Reply::ServerId(server_id)),
        "first recorded id is kept"
    );
    assert!(node.status().applied_index >= Some(2));
    assert_eq!(node.status().voters, vec![node.node_id()]);
    node.shutdown().await.unwrap();
}

/// - a state machine with state builds a snapshot
/// - a fresh state machine installs it and then holds the same state and applied log id
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_builds_and_installs() {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    use openraft::{Entry, EntryPayload, LogId};
    let source_dir = tempfile::tempdir().unwrap();
    let source_store = Store::open(source_dir.path()).unwrap();
    let mut source = state_machine(source_store.clone());
    let entry = Entry::<TypeConfig> {
        log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), 1),
        payload: EntryPayload::Normal(Batch(vec![command(
            1,
            Op::InitServer {
                server_id: "ab".repeat(32),
            },
        )])),
    };
    source.apply(vec![entry]).await.unwrap();
    let snapshot = source
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snapshot.meta.last_log_id.map(|id| id.index), Some(1));

    let target_dir = tempfile::tempdir().unwrap();
    let target_store = Store::open(target_dir.path()).unwrap();
    let mut target = state_machine(target_store.clone());
    target
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    let (applied, _) = target.applied_state().await.unwrap();
    assert_eq!(applied, snapshot.meta.last_log_id);
    assert_eq!(
        target_store.export_state().unwrap(),
        source_store.export_state().unwrap()
    );
    let current = target
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("snapshot kept");
    assert_eq!(current.meta, snapshot.meta);
}
