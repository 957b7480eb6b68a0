//! A mesh of three real nodes (libp2p on loopback, RocksDB in temp dirs): joining, replication,
//! any node serving the API, and failover of the leader during assignments.

use proto::mesh::StateDigestReply;
use proto::msgs::{AssignMsg, CloseSuccessfulMsg, EmptyMsg, ProcessIdMsg, SubmitMsg};
use proto::process::process_state as ps;
use proto::{Process, Request};
use std::collections::BTreeSet;
use std::time::Duration;
use tests::cluster::Cluster;
use tests::{wait_for, TestNode};

fn submit(name: &str) -> Request {
    Request::Submit(SubmitMsg {
        spec: TestNode::spec(name, "cli"),
    })
}

fn assign(timeout: i64) -> Request {
    Request::Assign(AssignMsg {
        colonyname: "dev".into(),
        timeout,
        ..AssignMsg::default()
    })
}

/// - three nodes form a mesh with three voters
/// - a process submitted on node 0 is replicated to every node
/// - an executor long-polling on node 2 is assigned it, and closes it through node 1
/// - all nodes then report the same state digest; only the server owner may read it
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_replicate_and_serve_from_any_node() {
    let cluster = Cluster::start(3).await;
    tracing::info!("--- long-poll on node 2, submit on node 0");
    let (client2, executor) = (cluster.client(2), cluster.executor.clone());
    let waiting = tokio::spawn(async move { client2.assign(&assign(20), &executor, 20).await });
    let submitted: Process = cluster
        .client(0)
        .call(&submit("hop"), &cluster.executor)
        .await
        .unwrap();
    let assigned = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("assigned within the long-poll")
        .unwrap()
        .unwrap();
    assert_eq!(assigned.processid, submitted.processid);
    tracing::info!("--- close through node 1, read on every node");
    let close = Request::CloseSuccessful(CloseSuccessfulMsg {
        processid: submitted.processid.clone(),
        out: vec!["ok".into()],
    });
    let _: serde_json::Value = cluster
        .client(1)
        .call(&close, &cluster.executor)
        .await
        .unwrap();
    for i in 0..3 {
        let client = cluster.client(i);
        let get = Request::GetProcess(ProcessIdMsg {
            processid: submitted.processid.clone(),
        });
        let key = cluster.executor.clone();
        wait_for("the close to replicate", Duration::from_secs(10), || {
            let (client, get, key) = (client.clone(), get.clone(), key.clone());
            async move {
                let process: Process = client.call(&get, &key).await.ok()?;
                (process.state == ps::SUCCESS).then_some(())
            }
        })
        .await;
    }
    tracing::info!("--- every node reports the same state digest at the same applied index");
    let digests = wait_for(
        "the nodes to apply the same index",
        Duration::from_secs(10),
        || {
            let cluster = &cluster;
            async move {
                let mut digests = Vec::new();
                for i in 0..3 {
                    let request = Request::GetStateDigest(EmptyMsg {});
                    let digest: StateDigestReply = cluster
                        .client(i)
                        .call(&request, &cluster.server)
                        .await
                        .ok()?;
                    digests.push(digest);
                }
                let index = digests[0].appliedindex;
                digests
                    .iter()
                    .all(|d| d.appliedindex == index)
                    .then_some(digests)
            }
        },
    )
    .await;
    assert!(digests[0].appliedindex > 0);
    for digest in &digests[1..] {
        assert_eq!(
            digest.digest, digests[0].digest,
            "{digest:?} vs {:?}",
            digests[0]
        );
    }
    let refused = cluster
        .client(0)
        .call::<StateDigestReply>(&Request::GetStateDigest(EmptyMsg {}), &cluster.executor)
        .await;
    assert!(
        refused.is_err(),
        "only the server owner reads the state digest"
    );
    cluster.shutdown().await;
}

/// - processes are submitted; the leader crashes while an executor assigns them
/// - a new leader takes over; every process is assigned exactly once and none is lost
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_during_assignments_loses_nothing() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let client = cluster.client(follower);
    let mut submitted = BTreeSet::new();
    for i in 0..10 {
        let p: Process = client
            .call(&submit(&format!("p{i}")), &cluster.executor)
            .await
            .unwrap();
        submitted.insert(p.processid);
    }
    let mut assigned = BTreeSet::new();
    for _ in 0..4 {
        let p = client
            .assign(&assign(5), &cluster.executor, 5)
            .await
            .unwrap();
        assert!(assigned.insert(p.processid), "assigned twice");
    }
    tracing::info!("--- crash the leader (node {leader})");
    cluster.crash(leader).await;
    let survivor = (0..3).find(|i| *i != leader).unwrap();
    let client = cluster.client(survivor);
    let drain = async {
        while assigned.len() < submitted.len() {
            match client.assign(&assign(5), &cluster.executor, 5).await {
                Ok(p) => assert!(assigned.insert(p.processid), "assigned twice"),
                // While a new leader is elected a write may be refused; the client retries.
                Err(error) => tracing::info!("assign refused during failover: {error}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), drain)
        .await
        .expect("drained within 60 s");
    assert_eq!(assigned, submitted);
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);
    cluster.shutdown().await;
}

/// A mesh network endpoint that belongs to no mesh (a fresh key, no certificate): its
/// client, its peer id, and the task running it (abort it when done).
fn stranger() -> (node::net::Client, String, tokio::task::JoinHandle<()>) {
    use node::net;
    let dir = tempfile::tempdir().unwrap();
    let keypair = net::load_or_create_keypair(&dir.path().join("node.key")).unwrap();
    let peer = net::peer_id_of(&keypair);
    let config = net::NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
    };
    let (client, _events, event_loop) = net::new(keypair, &config).unwrap();
    (
        client,
        peer,
        tokio::spawn(event_loop.run(std::future::pending())),
    )
}

/// - a peer without a certificate gets no raft or forwarding service, only a refusal
/// - a join with an expired or forged token is refused
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_without_certificates_are_refused() {
    use proto::mesh::{PeerRequest, PeerResponse, RaftRpcKind};
    let cluster = Cluster::start(1).await;
    let (client, stranger_peer, stop) = stranger();
    let target = &cluster.node(0).info;
    let vote = PeerRequest::Raft {
        kind: RaftRpcKind::Vote,
        body: "{}".into(),
    };
    let refused = client
        .request(&target.peer_id, &target.addrs, vote)
        .await
        .unwrap();
    let PeerResponse::Refused { reason } = refused else {
        panic!("served: {refused:?}")
    };
    assert!(reason.contains("no mesh certificate"), "{reason}");

    let info = proto::mesh::NodeInfo {
        peer_id: stranger_peer.clone(),
        ..Default::default()
    };
    let node_id = node::raft::node_id_of(&stranger_peer);
    for (token, why) in [
        (cluster.token(-10), "expired"),
        (format!("{}x", cluster.token(60)), "signature"),
    ] {
        let join = PeerRequest::Join {
            node_id,
            info: info.clone(),
            token: Some(token),
        };
        let refused = client
            .request(&target.peer_id, &target.addrs, join)
            .await
            .unwrap();
        let PeerResponse::Refused { reason } = refused else {
            panic!("joined: {refused:?}")
        };
        assert!(reason.contains(why), "{reason}");
    }
    let join = PeerRequest::Join {
        node_id,
        info,
        token: Some(cluster.token(60)),
    };
    let joined = client
        .request(&target.peer_id, &target.addrs, join)
        .await
        .unwrap();
    assert!(
        matches!(
            joined,
            PeerResponse::Joined {
                certificate: Some(_)
            }
        ),
        "{joined:?}"
    );
    stop.abort();
    cluster.shutdown().await;
}

/// - on the p2p side, a source whose peers keep presenting no certificate or bad join tokens
///   is banned: then even a valid join from it is refused, naming the ban
/// - the ban shows in `getbansmsg` (side p2p); `removebanmsg` lifts it and the join succeeds
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_failing_authentication_are_banned() {
    use proto::mesh::{BansReply, PeerRequest, PeerResponse, RaftRpcKind};
    use proto::msgs::{EmptyMsg, RemoveBanMsg};
    let cluster = Cluster::start_with(1, |config| {
        config.guard.exempt = vec![];
        config.guard.auth_failures_max = 3;
    })
    .await;
    let (client, stranger_peer, stop) = stranger();
    let target = &cluster.node(0).info;
    let refusal = |response: PeerResponse| match response {
        PeerResponse::Refused { reason } => reason,
        other => panic!("served: {other:?}"),
    };
    let vote = PeerRequest::Raft {
        kind: RaftRpcKind::Vote,
        body: "{}".into(),
    };
    let response = client.request(&target.peer_id, &target.addrs, vote).await;
    assert!(refusal(response.unwrap()).contains("no mesh certificate"));
    let info = proto::mesh::NodeInfo {
        peer_id: stranger_peer.clone(),
        ..Default::default()
    };
    let node_id = node::raft::node_id_of(&stranger_peer);
    let join = |token: String| PeerRequest::Join {
        node_id,
        info: info.clone(),
        token: Some(token),
    };
    for _ in 0..2 {
        let forged = join(format!("{}x", cluster.token(60)));
        let response = client.request(&target.peer_id, &target.addrs, forged).await;
        assert!(refusal(response.unwrap()).contains("signature"));
    }
    let valid = join(cluster.token(60));
    let response = client
        .request(&target.peer_id, &target.addrs, valid.clone())
        .await;
    let reason = refusal(response.unwrap());
    assert!(reason.contains("127.0.0.1 is banned"), "{reason}");

    let bans: BansReply = cluster
        .client(0)
        .call(&Request::GetBans(EmptyMsg {}), &cluster.server)
        .await
        .expect("the API side is not banned");
    assert_eq!(bans.bans.len(), 1, "{bans:?}");
    assert_eq!(
        (bans.bans[0].side.as_str(), bans.bans[0].failures),
        ("p2p", 3)
    );
    let lift = Request::RemoveBan(RemoveBanMsg {
        source: "127.0.0.1".into(),
    });
    let lifted: BansReply = cluster
        .client(0)
        .call(&lift, &cluster.server)
        .await
        .unwrap();
    assert_eq!(lifted.lifted, 1);
    let response = client.request(&target.peer_id, &target.addrs, valid).await;
    let joined = response.unwrap();
    assert!(
        matches!(
            joined,
            PeerResponse::Joined {
                certificate: Some(_)
            }
        ),
        "{joined:?}"
    );
    stop.abort();
    cluster.shutdown().await;
}

/// - with two of three nodes stopped, the remaining node refuses writes with a clear error
///   and still serves reads
/// - when the two come back, the mesh heals: writes work and every node catches up
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_refuses_writes_then_heals() {
    let mut cluster = Cluster::start(3).await;
    let before: Process = cluster
        .client(0)
        .call(&submit("before"), &cluster.executor)
        .await
        .unwrap();
    let leader = cluster.leader().await;
    let lonely = (leader + 1) % 3;
    let get = Request::GetProcess(ProcessIdMsg {
        processid: before.processid.clone(),
    });
    let (client, key) = (cluster.client(lonely), cluster.executor.clone());
    wait_for(
        "the lonely node to have the process",
        Duration::from_secs(10),
        || {
            let (client, get, key) = (client.clone(), get.clone(), key.clone());
            async move { client.call::<Process>(&get, &key).await.ok() }
        },
    )
    .await;
    let lonely_ready = format!("http://{}/ready", cluster.node(lonely).api_addr);
    let ready = |url: &String| {
        let url = url.clone();
        async move {
            let response = reqwest::get(&url).await.expect("GET /ready");
            (
                response.status().as_u16(),
                response.text().await.unwrap_or_default(),
            )
        }
    };
    assert_eq!(
        ready(&lonely_ready).await.0,
        200,
        "a caught-up member is ready"
    );
    for i in (0..3).filter(|i| *i != lonely) {
        cluster.stop(i).await;
    }
    tracing::info!("--- node {lonely} alone");
    let (status, text) = ready(&lonely_ready).await;
    assert_eq!(
        status, 503,
        "alone, the node cannot confirm it is caught up: {text}"
    );
    assert!(text.starts_with("not ready:"), "{text}");
    let refused = cluster
        .client(lonely)
        .call::<Process>(&submit("lost"), &cluster.executor)
        .await;
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("status 503"), "{message}");
    let get = Request::GetProcess(ProcessIdMsg {
        processid: before.processid.clone(),
    });
    let read: Process = cluster
        .client(lonely)
        .call(&get, &cluster.executor)
        .await
        .unwrap();
    assert_eq!(read.processid, before.processid, "reads still served");

    tracing::info!("--- heal");
    for i in (0..3).filter(|i| *i != lonely) {
        cluster.restart(i).await;
    }
    let after = wait_for("writes to work again", Duration::from_secs(30), || async {
        cluster
            .client(lonely)
            .call::<Process>(&submit("after"), &cluster.executor)
            .await
            .ok()
    })
    .await;
    for i in 0..3 {
        let get = Request::GetProcess(ProcessIdMsg {
            processid: after.processid.clone(),
        });
        let (client, key) = (cluster.client(i), cluster.executor.clone());
        wait_for("every node to catch up", Duration::from_secs(30), || {
            let (client, get, key) = (client.clone(), get.clone(), key.clone());
            async move { client.call::<Process>(&get, &key).await.ok() }
        })
        .await;
    }
    cluster.shutdown().await;
}

/// - with snapshots every 20 entries, a node is stopped while 60 more writes land and the log
///   behind the snapshot is purged
/// - restarted, the node catches up by installing a snapshot, then the log
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_catches_up_from_a_snapshot() {
    let mut cluster = Cluster::start_with(3, |config| {
        config.raft.snapshot_logs = 20;
        config.raft.snapshot_logs_kept = 0;
    })
    .await;
    let leader = cluster.leader().await;
    let behind = (leader + 1) % 3;
    cluster.stop(behind).await;
    let client = cluster.client(leader);
    let mut last = None;
    for i in 0..60 {
        let p: Process = client
            .call(&submit(&format!("w{i}")), &cluster.executor)
            .await
            .unwrap();
        last = Some(p.processid);
    }
    let last = last.unwrap();
    tracing::info!("--- restart node {behind}");
    cluster.restart(behind).await;
    let get = Request::GetProcess(ProcessIdMsg { processid: last });
    let (catching_up, key) = (cluster.client(behind), cluster.executor.clone());
    wait_for(
        "the restarted node to catch up",
        Duration::from_secs(30),
        || {
            let (client, get, key) = (catching_up.clone(), get.clone(), key.clone());
            async move { client.call::<Process>(&get, &key).await.ok() }
        },
    )
    .await;
    let snapshot = cluster.node(behind).store.load_snapshot().unwrap();
    assert!(
        snapshot.is_some(),
        "caught up through an installed snapshot"
    );
    cluster.shutdown().await;
}

/// - four nodes: three voters and a learner
/// - a stopped voter is replaced by the learner once silent past `voter_dead_ms`
/// - once silent past `node_dead_ms` it is removed and its certificate revoked everywhere
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autopilot_replaces_then_removes_a_dead_voter() {
    let mut cluster = Cluster::start(4).await;
    let leader = cluster.leader().await;
    let status = cluster.node(leader).raft.status();
    assert_eq!((status.voters.len(), status.learners.len()), (3, 1));
    let learner = status.learners[0];
    let dead_id = *status
        .voters
        .iter()
        .find(|v| **v != status.node_id)
        .unwrap();
    let dead = (0..4)
        .find(|i| cluster.node(*i).raft.node_id() == dead_id)
        .unwrap();
    let dead_peer = cluster.node(dead).info.peer_id.clone();
    tracing::info!("--- stop voter {dead}");
    cluster.stop(dead).await;
    wait_for(
        "the learner to replace the dead voter",
        Duration::from_secs(20),
        || async {
            let status = cluster.node(leader).raft.status();
            (status.voters.contains(&learner) && !status.voters.contains(&dead_id)).then_some(())
        },
    )
    .await;
    wait_for(
        "the dead node to be removed and revoked",
        Duration::from_secs(30),
        || async {
            let running = (0..4).filter(|i| *i != dead);
            let all = running.map(|i| cluster.node(i)).all(|n| {
                let revoked = node::state::query::is_revoked(&n.store, &dead_peer).unwrap_or(false);
                let status = n.raft.status();
                revoked && !status.voters.contains(&dead_id) && !status.learners.contains(&dead_id)
            });
            all.then_some(())
        },
    )
    .await;
    cluster.shutdown().await;
}

/// - stopping the leader hands over first: another voter leads, the old one left the voters
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_leader_steps_down() {
    let mut cluster = Cluster::start(4).await;
    let leader = cluster.leader().await;
    let leader_id = cluster.node(leader).raft.node_id();
    cluster.stop(leader).await;
    let next = cluster.leader().await;
    assert_ne!(next, leader);
    let status = cluster.node(next).raft.status();
    assert!(
        !status.voters.contains(&leader_id),
        "the old leader left the voters"
    );
    assert_eq!(status.voters.len(), 3, "the learner took its place");
    cluster.shutdown().await;
}

/// - a one-try assign (timeout -1) on a follower right after a submit through another node
///   finds the process: the follower catches up with the leader before saying "none"
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_try_assign_sees_a_write_made_through_another_node() {
    let cluster = Cluster::start(3).await;
    for i in 0..5 {
        let submitted: Process = cluster
            .client(0)
            .call(&submit(&format!("now{i}")), &cluster.executor)
            .await
            .unwrap();
        let assigned = cluster
            .client(2)
            .assign(&assign(-1), &cluster.executor, 0)
            .await
            .unwrap();
        assert_eq!(assigned.processid, submitted.processid);
    }
    cluster.shutdown().await;
}

/// - a realtime subscription on node 1 for the colony's successful processes sees a process
///   submitted through node 0 and closed through node 2 (every node applies every change)
/// - a subscription for one process on node 2 gets the frame at once when it is already there
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_on_any_node_see_changes_made_through_others() {
    let cluster = Cluster::start(3).await;
    let watch_all = Request::SubscribeProcesses(proto::msgs::SubscribeProcessesMsg {
        colonyname: "dev".into(),
        executortype: "cli".into(),
        state: ps::SUCCESS,
        timeout: 20,
    });
    let mut frames = cluster
        .client(1)
        .subscribe(&watch_all, &cluster.executor)
        .await
        .unwrap();
    // The server registers the subscription when it reads the frame; a process closed
    // before that would not be seen, so keep running processes until one is (bounded).
    let mut closed = Vec::new();
    let seen: Process = loop {
        assert!(closed.len() < 10, "no frame after {} closes", closed.len());
        let submitted: Process = cluster
            .client(0)
            .call(&submit("watched"), &cluster.executor)
            .await
            .unwrap();
        let assigned = cluster
            .client(2)
            .assign(&assign(10), &cluster.executor, 10)
            .await
            .unwrap();
        assert_eq!(assigned.processid, submitted.processid);
        let close = Request::CloseSuccessful(CloseSuccessfulMsg {
            processid: submitted.processid.clone(),
            out: vec!["done".into()],
        });
        let _: serde_json::Value = cluster
            .client(2)
            .call(&close, &cluster.executor)
            .await
            .unwrap();
        closed.push(submitted.processid);
        let frame = tokio::time::timeout(Duration::from_millis(500), frames.next()).await;
        if let Ok(Some(frame)) = frame {
            break serde_json::from_str(&frame.unwrap()).unwrap();
        }
    };
    assert!(closed.contains(&seen.processid));
    assert_eq!(seen.state, ps::SUCCESS);
    assert_eq!(seen.output, vec![serde_json::Value::from("done")]);
    let watch_one = Request::SubscribeProcess(proto::msgs::SubscribeProcessMsg {
        colonyname: "dev".into(),
        processid: seen.processid.clone(),
        state: ps::SUCCESS,
        timeout: 20,
        ..Default::default()
    });
    let mut frames = cluster
        .client(2)
        .subscribe(&watch_one, &cluster.executor)
        .await
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), frames.next())
        .await
        .expect("a frame at once")
        .expect("not closed before the frame")
        .unwrap();
    let again: Process = serde_json::from_str(&frame).unwrap();
    assert_eq!(again.processid, seen.processid);
    let closed_after = tokio::time::timeout(Duration::from_secs(10), frames.next()).await;
    assert!(
        matches!(closed_after, Ok(None)),
        "one frame, then the server closes"
    );
    cluster.shutdown().await;
}

/// The workflows the cron of `cluster` started so far (their roots wait forever: no executor
/// has their type), read through `node`.
async fn cron_runs(cluster: &Cluster, node: usize) -> Vec<proto::ProcessGraph> {
    let list = Request::GetProcessGraphs(proto::msgs::ProcessGraphsMsg {
        colonyname: "dev".into(),
        count: 100,
        state: ps::WAITING,
    });
    // During the failover a read may be refused; the caller polls again.
    let graphs: Result<Vec<proto::ProcessGraph>, _> =
        cluster.client(node).call(&list, &cluster.executor).await;
    graphs.unwrap_or_default()
}

/// - a cron firing every second on a 3-node mesh starts exactly one workflow per period,
///   before and after the leader is killed: no second has two runs, and the runs continue
///   on the new leader with no gap longer than the failover
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_fires_once_per_period_across_a_leader_kill() {
    let mut cluster = Cluster::start(3).await;
    let workflow = serde_json::json!({"colonyname": "dev", "functionspecs": [{
        "nodename": "tick", "funcname": "tick", "maxexectime": -1, "maxwaittime": -1,
        "conditions": {"executortype": "nobody-runs-this"}}]});
    let cron = proto::Cron {
        colonyname: "dev".into(),
        name: "every-second".into(),
        cronexpression: "* * * * * *".into(),
        interval: -1,
        workflowspec: workflow.to_string(),
        ..proto::Cron::default()
    };
    let add = Request::AddCron(proto::msgs::AddCronMsg { cron });
    let _: proto::Cron = cluster
        .client(0)
        .call(&add, &cluster.executor)
        .await
        .unwrap();
    let leader = cluster.leader().await;
    let survivor = (leader + 1) % 3;
    wait_for(
        "3 runs before the kill",
        Duration::from_secs(30),
        || async { (cron_runs(&cluster, survivor).await.len() >= 3).then_some(()) },
    )
    .await;
    tracing::info!("--- crash the leader (node {leader})");
    cluster.crash(leader).await;
    let before = cron_runs(&cluster, survivor).await.len();
    let runs = wait_for("4 runs after the kill", Duration::from_secs(60), || async {
        let runs = cron_runs(&cluster, survivor).await;
        (runs.len() >= before + 4).then_some(runs)
    })
    .await;
    let mut seconds: Vec<i64> = runs
        .iter()
        .map(|g| g.submissiontime.unix_nanos().unwrap() / 1_000_000_000)
        .collect();
    seconds.sort();
    for pair in seconds.windows(2) {
        assert!(
            pair[1] > pair[0],
            "two runs in second {}: {seconds:?}",
            pair[0]
        );
        assert!(
            pair[1] - pair[0] <= 5,
            "a gap longer than the failover: {seconds:?}"
        );
    }
    cluster.shutdown().await;
}
