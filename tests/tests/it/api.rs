//! API scenarios against a real in-process node: lifecycle, long-poll wake-ups, timeouts,
//! roles, listings, statistics, unsigned calls, and the tick-driven limits.

use node::client::ClientError;
use proto::msgs::{
    AssignMsg, AttributeIdMsg, AttributeMsg, CloseFailedMsg, CloseSuccessfulMsg, ColonyNameMsg,
    EmptyMsg, GetProcessesMsg, ProcessIdMsg, SubmitMsg, VersionMsg,
};
use proto::process::process_state as ps;
use proto::{Attribute, FunctionSpec, PrivateKey, Process, Request, Statistics};
use std::time::Duration;
use tests::{test_key, wait_for, Options, TestNode};

fn submit(spec: FunctionSpec) -> Request {
    Request::Submit(SubmitMsg { spec })
}

fn assign(timeout: i64) -> Request {
    Request::Assign(AssignMsg {
        colonyname: "dev".into(),
        timeout,
        ..AssignMsg::default()
    })
}

async fn get(node: &TestNode, id: &str) -> Process {
    let request = Request::GetProcess(ProcessIdMsg {
        processid: id.into(),
    });
    node.client
        .call(&request, &node.executor)
        .await
        .expect("get process")
}

fn status(error: ClientError) -> i32 {
    match error {
        ClientError::Api { status, .. } => status,
        other => panic!("expected an API error, got {other}"),
    }
}

/// - submit, assign, close successful; the output is stored
/// - a second executor cannot close it; closing again as failed is refused
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_assign_close() {
    let node = TestNode::start().await;
    tracing::info!("--- submit");
    let submitted: Process = node
        .client
        .call(&submit(TestNode::spec("echo", "cli")), &node.executor)
        .await
        .unwrap();
    assert_eq!(submitted.state, ps::WAITING);
    tracing::info!("--- assign");
    let assigned = node
        .client
        .assign(&assign(5), &node.executor, 5)
        .await
        .unwrap();
    assert_eq!(assigned.processid, submitted.processid);
    assert_eq!(assigned.state, ps::RUNNING);
    let other = test_key();
    node.register_executor(&other, "other", "cli").await;
    let close = Request::CloseSuccessful(CloseSuccessfulMsg {
        processid: submitted.processid.clone(),
        out: vec!["done".into()],
    });
    let refused = node
        .client
        .call::<serde_json::Value>(&close, &other)
        .await
        .unwrap_err();
    assert_eq!(status(refused), 403);
    let _: serde_json::Value = node.client.call(&close, &node.executor).await.unwrap();
    let closed = get(&node, &submitted.processid).await;
    assert_eq!(
        (closed.state, closed.output),
        (ps::SUCCESS, vec!["done".into()])
    );
    let fail = Request::CloseFailed(CloseFailedMsg {
        processid: submitted.processid.clone(),
        errors: vec!["late".into()],
    });
    let refused = node
        .client
        .call::<serde_json::Value>(&fail, &node.executor)
        .await
        .unwrap_err();
    assert_eq!(status(refused), 400);
    node.stop().await;
}

/// - an executor long-polls on an empty queue
/// - a submit made while it waits is handed to it, well before its timeout
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_by_submit() {
    let node = TestNode::start().await;
    let client = node.client.clone();
    let executor = node.executor.clone();
    let waiting = tokio::spawn(async move { client.assign(&assign(30), &executor, 30).await });
    wait_for(
        "the long-poll to register",
        Duration::from_secs(10),
        || async { (node.handle.long_polls() == 1).then_some(()) },
    )
    .await;
    let submitted: Process = node
        .client
        .call(&submit(TestNode::spec("late", "cli")), &node.executor)
        .await
        .unwrap();
    let assigned = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("woken before the 30 s timeout")
        .unwrap()
        .unwrap();
    assert_eq!(assigned.processid, submitted.processid);
    node.stop().await;
}

/// - timeout 0 is refused; a negative timeout tries once; a short timeout expires with 404
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_timeouts() {
    let node = TestNode::start().await;
    let zero = node
        .client
        .assign(&assign(0), &node.executor, 0)
        .await
        .unwrap_err();
    assert_eq!(status(zero), 400);
    let once = node
        .client
        .assign(&assign(-1), &node.executor, 0)
        .await
        .unwrap_err();
    assert!(once.to_string().contains("No process available"), "{once}");
    let expired = node
        .client
        .assign(&assign(1), &node.executor, 1)
        .await
        .unwrap_err();
    assert_eq!(status(expired), 404);
    node.stop().await;
}

/// - processes targeted at another executor name are skipped, not lost
/// - priority orders the queue
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targeting_and_priority() {
    let node = TestNode::start().await;
    let other = test_key();
    node.register_executor(&other, "other", "cli").await;
    let mut targeted = TestNode::spec("for-other", "cli");
    targeted.conditions.executornames = vec!["other".into()];
    let targeted: Process = node
        .client
        .call(&submit(targeted), &node.executor)
        .await
        .unwrap();
    let low: Process = node
        .client
        .call(&submit(TestNode::spec("low", "cli")), &node.executor)
        .await
        .unwrap();
    let high_spec = FunctionSpec {
        priority: 5,
        ..TestNode::spec("high", "cli")
    };
    let high: Process = node
        .client
        .call(&submit(high_spec), &node.executor)
        .await
        .unwrap();
    let first = node
        .client
        .assign(&assign(-1), &node.executor, 0)
        .await
        .unwrap();
    let second = node
        .client
        .assign(&assign(-1), &node.executor, 0)
        .await
        .unwrap();
    assert_eq!(
        (first.processid, second.processid),
        (high.processid, low.processid)
    );
    assert!(node
        .client
        .assign(&assign(-1), &node.executor, 0)
        .await
        .is_err());
    let theirs = node.client.assign(&assign(-1), &other, 0).await.unwrap();
    assert_eq!(theirs.processid, targeted.processid);
    node.stop().await;
}

/// - maxexectime re-queues with retries + 1, then fails at maxretries, driven by the tick
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxexectime_requeues_then_fails() {
    let node = TestNode::start_with(Options {
        manual_clock: true,
        ..Options::default()
    })
    .await;
    let clock = node.clock.clone().expect("manual clock");
    let spec = FunctionSpec {
        maxexectime: 5,
        maxretries: 1,
        ..TestNode::spec("slow", "cli")
    };
    let p: Process = node
        .client
        .call(&submit(spec), &node.executor)
        .await
        .unwrap();
    node.client
        .assign(&assign(-1), &node.executor, 0)
        .await
        .unwrap();
    clock.advance_nanos(6_000_000_000);
    let requeued = wait_for("re-queue", Duration::from_secs(10), || async {
        let p = get(&node, &p.processid).await;
        (p.state == ps::WAITING).then_some(p)
    })
    .await;
    assert_eq!(requeued.retries, 1);
    node.client
        .assign(&assign(-1), &node.executor, 0)
        .await
        .unwrap();
    clock.advance_nanos(6_000_000_000);
    let failed = wait_for("failure", Duration::from_secs(10), || async {
        let p = get(&node, &p.processid).await;
        (p.state == ps::FAILED).then_some(p)
    })
    .await;
    assert_eq!(
        failed.errors,
        vec!["Maximum execution time limit exceeded".to_string()]
    );
    node.stop().await;
}

/// - listing by state, statistics, attributes, unsigned version and server info
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_statistics_attributes_and_unsigned_calls() {
    let node = TestNode::start().await;
    for i in 0..3 {
        let spec = TestNode::spec(&format!("f{i}"), "cli");
        let _: Process = node
            .client
            .call(&submit(spec), &node.executor)
            .await
            .unwrap();
    }
    let running = node
        .client
        .assign(&assign(-1), &node.executor, 0)
        .await
        .unwrap();
    let list = Request::GetProcesses(GetProcessesMsg {
        colonyname: "dev".into(),
        count: 10,
        state: ps::WAITING,
        ..GetProcessesMsg::default()
    });
    let waiting: Vec<Process> = node.client.call(&list, &node.executor).await.unwrap();
    assert_eq!(waiting.len(), 2);
    let stats = Request::GetColonyStats(ColonyNameMsg {
        colonyname: "dev".into(),
    });
    let stats: Statistics = node.client.call(&stats, &node.executor).await.unwrap();
    assert_eq!(
        (
            stats.waitingprocesses,
            stats.runningprocesses,
            stats.executors
        ),
        (2, 1, 1)
    );
    let global: Statistics = node
        .client
        .call(&Request::GetStatistics(EmptyMsg {}), &node.server)
        .await
        .unwrap();
    assert_eq!(global.colonies, 1);
    let denied = node
        .client
        .call::<Statistics>(&Request::GetStatistics(EmptyMsg {}), &node.executor);
    assert_eq!(status(denied.await.unwrap_err()), 403);

    let attribute = Attribute {
        targetid: running.processid.clone(),
        key: "progress".into(),
        value: "50%".into(),
        attributetype: 1,
        ..Attribute::default()
    };
    let added: Attribute = node
        .client
        .call(
            &Request::AddAttribute(AttributeMsg { attribute }),
            &node.executor,
        )
        .await
        .unwrap();
    let fetched: Attribute = node
        .client
        .call(
            &Request::GetAttribute(AttributeIdMsg {
                attributeid: added.attributeid.clone(),
            }),
            &node.executor,
        )
        .await
        .unwrap();
    assert_eq!(fetched.value, "50%");
    assert_eq!(
        get(&node, &running.processid).await.attributes,
        vec![fetched]
    );

    let version = Request::Version(VersionMsg::default());
    let json = node
        .client
        .call_raw(&version, None, Duration::ZERO)
        .await
        .unwrap();
    assert!(json.contains("\"buildversion\""), "{json}");
    let info = node
        .client
        .call_raw(&Request::GetServerInfo(EmptyMsg {}), None, Duration::ZERO);
    assert!(info
        .await
        .unwrap()
        .contains(&node.handle.api_addr.port().to_string()));
    node.stop().await;
}

/// Each failure ColonyOS also has, sent over HTTP, answers with ColonyOS's text (the table
/// in `proto::failures`, checked against `docs/colonyos-failures.md`) and its status:
/// - roles: not the server owner, not the colony owner, not a member (a stranger's key), a
///   colony that does not exist
/// - assign: nothing to run (404), paused with one try (503), paused until the timeout (408)
/// - already exists: colony, executor, user (409; ColonyOS: 400)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_sent_in_colonyos_words() {
    use proto::failures::ColonyosFailure as F;
    use proto::msgs::{ColonyMsg, ExecutorMsg, UserMsg};
    use proto::{Colony, Executor, User};
    let node = TestNode::start().await;
    let stranger = PrivateKey::from_entropy([42; 32]);
    let dev = ColonyNameMsg {
        colonyname: "dev".into(),
    };
    let assign = |timeout: i64| {
        Request::Assign(AssignMsg {
            colonyname: "dev".into(),
            timeout,
            ..AssignMsg::default()
        })
    };
    let colony = Colony {
        colonyid: node.colony.id(),
        name: "dev".into(),
    };
    let executor = Executor {
        executorid: test_key().id(),
        executorname: "worker".into(),
        executortype: "cli".into(),
        colonyname: "dev".into(),
        ..Executor::default()
    };
    let user = User {
        colonyname: "dev".into(),
        userid: test_key().id(),
        name: "alice".into(),
        ..User::default()
    };
    let user_again = User {
        userid: test_key().id(),
        ..user.clone()
    };
    let cases: Vec<(Request, &PrivateKey, F)> = vec![
        (
            Request::GetColonies(EmptyMsg {}),
            &node.executor,
            F::NotServerOwner,
        ),
        (
            Request::AddExecutor(ExecutorMsg {
                executor: executor.clone(),
            }),
            &node.executor,
            F::NotColonyOwner,
        ),
        (
            submit(TestNode::spec("x", "cli")),
            &stranger,
            F::NotMember { colony: "dev" },
        ),
        (
            Request::GetColony(ColonyNameMsg {
                colonyname: "nowhere".into(),
            }),
            &node.executor,
            F::NoSuchColony { colony: "nowhere" },
        ),
        (assign(-1), &node.executor, F::NoProcess),
        (
            Request::GetProcess(ProcessIdMsg {
                processid: "0".repeat(64),
            }),
            &node.executor,
            F::ProcessNotFound,
        ),
        (
            Request::AddColony(ColonyMsg { colony }),
            &node.server,
            F::ColonyExists { colony: "dev" },
        ),
        (
            Request::AddExecutor(ExecutorMsg { executor }),
            &node.colony,
            F::ExecutorExists {
                executor: "worker",
                colony: "dev",
            },
        ),
        (
            Request::AddUser(UserMsg { user: user_again }),
            &node.colony,
            F::UserExists {
                user: "alice",
                colony: "dev",
            },
        ),
    ];
    let _: User = node
        .client
        .call(&Request::AddUser(UserMsg { user }), &node.colony)
        .await
        .unwrap();
    let refused = |expected: F<'static>, error: ClientError| match error {
        ClientError::Api { status, message } => {
            let wanted = proto::ApiError::from(expected);
            assert_eq!(message, wanted.message, "{expected:?}");
            let code = node::api::status_of(wanted.code).as_u16();
            assert_eq!(status, i32::from(code), "{expected:?}");
        }
        other => panic!("{expected:?}: {other}"),
    };
    for (request, key, expected) in cases {
        let error = node
            .client
            .call::<serde_json::Value>(&request, key)
            .await
            .unwrap_err();
        refused(expected, error);
    }
    // Paused: one try (503), a wait until the timeout (408).
    let pause = Request::PauseAssignments(dev.clone());
    let _: serde_json::Value = node.client.call(&pause, &node.colony).await.unwrap();
    let error = node
        .client
        .call::<Process>(&assign(-1), &node.executor)
        .await
        .unwrap_err();
    refused(F::Paused, error);
    let error = node
        .client
        .assign(&assign(1), &node.executor, 1)
        .await
        .unwrap_err();
    refused(F::PausedTimeout, error);
    node.stop().await;
}

/// - an executor long-polls with a one-hour timeout
/// - stopping the node ends the poll with 503 at once instead of waiting for the timeout
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_long_polls() {
    let node = TestNode::start().await;
    let client = node.client.clone();
    let executor = node.executor.clone();
    let waiting = tokio::spawn(async move { client.assign(&assign(3600), &executor, 60).await });
    wait_for(
        "the long-poll to register",
        Duration::from_secs(10),
        || async { (node.handle.long_polls() == 1).then_some(()) },
    )
    .await;
    let stopped = tokio::time::timeout(Duration::from_secs(10), node.stop()).await;
    stopped.expect("stop does not wait for long-polls");
    let refused = waiting.await.unwrap().unwrap_err();
    assert_eq!(status(refused), 503);
}

/// Listings ordered and filtered as ColonyOS does:
/// - `getprocesshistmsg` lists oldest submission first
/// - `getprocessesmsg` with both an initiator and a label filters by the initiator (ColonyOS
///   tries type, then initiator, then label)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_ordered_and_filtered_as_colonyos_does() {
    use proto::msgs::GetProcessHistMsg;
    let node = TestNode::start().await;
    let mut submitted = Vec::new();
    for (name, label) in [("first", "a"), ("second", "b"), ("third", "a")] {
        let mut spec = TestNode::spec(name, "cli");
        spec.label = label.into();
        let p: Process = node
            .client
            .call(&submit(spec), &node.executor)
            .await
            .unwrap();
        submitted.push(p.processid);
    }
    let hist = Request::GetProcessHist(GetProcessHistMsg {
        colonyname: "dev".into(),
        seconds: 3600,
        state: ps::WAITING,
        ..GetProcessHistMsg::default()
    });
    let listed: Vec<Process> = node.client.call(&hist, &node.executor).await.unwrap();
    let ids: Vec<String> = listed.into_iter().map(|p| p.processid).collect();
    assert_eq!(ids, submitted, "oldest first");
    let filtered = Request::GetProcesses(GetProcessesMsg {
        colonyname: "dev".into(),
        count: 10,
        state: ps::WAITING,
        label: "a".into(),
        initiator: "nobody".into(),
        ..GetProcessesMsg::default()
    });
    let listed: Vec<Process> = node.client.call(&filtered, &node.executor).await.unwrap();
    assert!(listed.is_empty(), "the initiator filter wins: {listed:?}");
    let by_label = Request::GetProcesses(GetProcessesMsg {
        colonyname: "dev".into(),
        count: 10,
        state: ps::WAITING,
        label: "a".into(),
        ..GetProcessesMsg::default()
    });
    let listed: Vec<Process> = node.client.call(&by_label, &node.executor).await.unwrap();
    assert_eq!(listed.len(), 2);
    node.stop().await;
}
