//! Operator endpoints against a real node: `/metrics` counts what the node did.

use proto::msgs::{AssignMsg, CloseSuccessfulMsg, SubmitMsg};
use proto::{Process, Request};
use tests::TestNode;

/// The value of the sample `name` (with its labels, exactly as rendered), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// - a submitted, assigned and closed process shows in the request counters, the latency
///   histogram, the assign wait, the proposals and the processes by state
/// - a malformed request counts as type "invalid" with status 400
/// - raft figures describe a one-node leader
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_report_state() {
    let node = TestNode::start().await;
    let submit = Request::Submit(SubmitMsg {
        spec: TestNode::spec("echo", "cli"),
    });
    let process: Process = node.client.call(&submit, &node.executor).await.unwrap();
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
        processid: process.processid,
        out: vec![],
    });
    let _: serde_json::Value = node.client.call(&close, &node.executor).await.unwrap();
    let base = format!("http://{}", node.handle.api_addr);
    let http = reqwest::Client::new();
    let bad = http
        .post(format!("{base}/api"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    let response = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let expect = |name: &str, want: f64| {
        let got = sample(&text, name).unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        assert_eq!(got, want, "{name}");
    };
    expect(
        r#"colonymesh_api_requests_total{status="200",type="submitfuncspecmsg"}"#,
        1.0,
    );
    expect(
        r#"colonymesh_api_requests_total{status="200",type="assignprocessmsg"}"#,
        1.0,
    );
    expect(
        r#"colonymesh_api_requests_total{status="400",type="invalid"}"#,
        1.0,
    );
    expect(
        r#"colonymesh_api_request_duration_seconds_count{type="closesuccessfulmsg"}"#,
        1.0,
    );
    expect("colonymesh_assign_wait_seconds_count", 1.0);
    expect(r#"colonymesh_processes{state="successful"}"#, 1.0);
    expect(r#"colonymesh_processes{state="waiting"}"#, 0.0);
    expect(r#"colonymesh_raft_role{role="leader"}"#, 1.0);
    expect(r#"colonymesh_mesh_members{health="up"}"#, 1.0);
    let proposals = sample(&text, "colonymesh_raft_proposals_total").unwrap();
    assert!(
        proposals >= 3.0,
        "submit, assign and close were proposed: {proposals}"
    );
    let commit = sample(&text, "colonymesh_raft_commit_index").unwrap();
    let applied = sample(&text, "colonymesh_raft_applied_index").unwrap();
    assert!(
        commit >= applied && applied > 0.0,
        "commit {commit}, applied {applied}"
    );
    assert!(sample(&text, "colonymesh_raft_term").unwrap() >= 1.0);
    node.stop().await;
}

/// POSTs `body` to `/api` from local address `from`: the status and the error message.
async fn post_from(from: &str, base: &str, body: String) -> (u16, String) {
    let http = reqwest::Client::builder()
        .local_address(Some(from.parse().unwrap()))
        .build()
        .unwrap();
    let response = http
        .post(format!("{base}/api"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let reply: proto::RpcReply = serde_json::from_str(&text).unwrap();
    let message = reply
        .failure_payload()
        .map(|f| f.message)
        .unwrap_or_default();
    (status, message)
}

/// `colonymesh --json ARGS` against `node` as its server owner.
async fn cli(node: &TestNode, args: &[&str]) -> std::process::Output {
    let args = [&["--json"], args].concat();
    let env = [
        ("COLONIES_SERVER_HOST", "127.0.0.1".to_string()),
        (
            "COLONIES_SERVER_HTTP_PORT",
            node.handle.api_addr.port().to_string(),
        ),
        ("COLONIES_TLS", "false".to_string()),
        ("COLONIES_SERVER_PRVKEY", node.server.to_hex()),
    ];
    tests::run_colonymesh(&args, &env).await
}

/// - bad signatures and signatures of unknown identities from one source ban it once they
///   reach `auth_failures_max`; then even a valid request from it is refused (403, naming
///   the ban), while other sources are served
/// - a refusal of a known identity (a member without the role) is no failed authentication
/// - the ban shows in `/metrics` and `colonymesh ban ls`; `ban rm` lifts it
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_bad_signatures_ban_the_source() {
    use proto::msgs::{ColonyNameMsg, EmptyMsg};
    let node = TestNode::start_configured(tests::Options::default(), |config, _| {
        config.guard.exempt = vec!["127.0.0.1".into()];
        config.guard.auth_failures_max = 3;
        config.guard.ban_seconds = 600;
    })
    .await;
    let base = format!("http://{}", node.handle.api_addr);
    let get_colony = Request::GetColony(ColonyNameMsg {
        colonyname: "dev".into(),
    });
    let signed = |key: &proto::PrivateKey| {
        serde_json::to_string(&proto::RpcMsg::sign(&get_colony, key)).unwrap()
    };
    let mut forged = proto::RpcMsg::sign(&get_colony, &node.executor);
    forged.signature = "00".repeat(65);
    let forged = serde_json::to_string(&forged).unwrap();
    let stranger = tests::test_key();
    let attacker = "127.0.0.3";

    // A known identity without the role: refused, but no failed authentication.
    let clusterview = Request::GetCluster(EmptyMsg {});
    let not_owner =
        serde_json::to_string(&proto::RpcMsg::sign(&clusterview, &node.executor)).unwrap();
    for _ in 0..5 {
        let (status, _) = post_from(attacker, &base, not_owner.clone()).await;
        assert_eq!(status, 403);
    }
    let (status, _) = post_from(attacker, &base, signed(&node.executor)).await;
    assert_eq!(status, 200, "not banned by refusals of a known identity");

    let (status, text) = post_from(attacker, &base, forged.clone()).await;
    assert_eq!(status, 403, "{text}");
    assert!(!text.contains("banned"), "{text}");
    for _ in 0..2 {
        let (status, _) = post_from(attacker, &base, signed(&stranger)).await;
        assert_eq!(status, 403);
    }
    let (status, text) = post_from(attacker, &base, signed(&node.executor)).await;
    assert_eq!(status, 403, "banned after the third failure: {text}");
    assert!(text.contains("127.0.0.3 is banned"), "{text}");
    let (status, _) = post_from("127.0.0.4", &base, signed(&node.executor)).await;
    assert_eq!(status, 200, "another source is served");

    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(&text, r#"colonymesh_auth_failures_total{side="api"}"#),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, r#"colonymesh_bans_total{side="api"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"colonymesh_bans_active{side="api"}"#),
        Some(1.0)
    );

    let listed = cli(&node, &["ban", "ls"]).await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let bans = listed["bans"].as_array().unwrap();
    assert_eq!(bans.len(), 1, "{listed}");
    assert_eq!(bans[0]["source"], attacker);
    assert_eq!(bans[0]["side"], "api");
    assert_eq!(bans[0]["failures"], 3);
    let lifted = cli(&node, &["ban", "rm", attacker]).await;
    assert!(
        lifted.status.success(),
        "{}",
        String::from_utf8_lossy(&lifted.stderr)
    );
    let (status, text) = post_from(attacker, &base, signed(&node.executor)).await;
    assert_eq!(status, 200, "served again once lifted: {text}");
    let again = cli(&node, &["ban", "rm", attacker]).await;
    assert!(!again.status.success(), "nothing left to lift");
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(message.contains("is not banned"), "{message}");
    node.stop().await;
}

/// A site behind one address: 1,000 executors with their own keys long-poll from one source
/// that no exemption covers, three rounds of 1 s polls (3,000 requests within about 3 s; a
/// limit per source address of 500/s with a burst of 1,000 would have refused some):
/// - every poll is served (404: nothing to assign), none refused with 429
/// - a process submitted meanwhile goes to one of them
/// - the same source sending bad signatures is still banned (then refused 403, naming the
///   ban), and an identity over its own rate gets 429 with `Retry-After`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_executors_behind_one_address_are_served() {
    use proto::msgs::ColonyNameMsg;
    const EXECUTORS: usize = 1000;
    let node = TestNode::start_configured(tests::Options::default(), |config, _| {
        config.guard.exempt = vec!["127.0.0.1".into()];
        config.guard.auth_failures_max = 3;
        config.guard.requests_per_second = 50;
        config.guard.request_burst = 50;
    })
    .await;
    let base = format!("http://{}", node.handle.api_addr);
    let site = "127.0.0.5";
    let keys: Vec<proto::PrivateKey> = (0..EXECUTORS).map(|_| tests::test_key()).collect();
    // Registration by the colony owner from the exempt address, 25 at a time.
    for (chunk, batch) in keys.chunks(25).enumerate() {
        let mut registrations = tokio::task::JoinSet::new();
        for (i, key) in batch.iter().enumerate() {
            let (client, colony, key) = (node.client.clone(), node.colony.clone(), key.clone());
            let name = format!("site-{}", chunk * 25 + i);
            registrations.spawn(async move {
                tests::register_executor(&client, &colony, &key, &name, "site").await
            });
        }
        while let Some(done) = registrations.join_next().await {
            done.expect("registered");
        }
    }

    let http = reqwest::Client::builder()
        .local_address(Some(site.parse().unwrap()))
        .pool_max_idle_per_host(EXECUTORS)
        .build()
        .unwrap();
    let assign = Request::Assign(AssignMsg {
        colonyname: "dev".into(),
        timeout: 1,
        ..AssignMsg::default()
    });
    let submit = Request::Submit(SubmitMsg {
        spec: TestNode::spec("echo", "site"),
    });
    let mut assigned = 0;
    for round in 0..3 {
        let mut polls = tokio::task::JoinSet::new();
        for key in &keys {
            let body = serde_json::to_string(&proto::RpcMsg::sign(&assign, key)).unwrap();
            let request = http.post(format!("{base}/api")).body(body);
            polls.spawn(async move {
                let response = request.send().await.expect("poll sent");
                let status = response.status().as_u16();
                (status, response.text().await.unwrap_or_default())
            });
        }
        if round == 1 {
            let _: Process = node.client.call(&submit, &node.executor).await.unwrap();
        }
        let mut answers = Vec::new();
        while let Some(answer) = polls.join_next().await {
            answers.push(answer.expect("poll task"));
        }
        for (status, text) in &answers {
            assert!(
                *status == 404 || *status == 200,
                "round {round}: a poll answered {status}: {text}"
            );
        }
        assigned += answers.iter().filter(|(status, _)| *status == 200).count();
    }
    assert_eq!(
        assigned, 1,
        "the one process went to one of the site's executors"
    );

    // One identity over its own rate (50/s here): 429 with Retry-After; the others are fine.
    let read = Request::GetColony(ColonyNameMsg {
        colonyname: "dev".into(),
    });
    let body = serde_json::to_string(&proto::RpcMsg::sign(&read, &keys[0])).unwrap();
    let mut limited = None;
    for _ in 0..200 {
        let response = http
            .post(format!("{base}/api"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("an identity over its rate is refused");
    assert_eq!(limited.headers()["retry-after"], "1");
    let reply: proto::RpcReply = serde_json::from_str(&limited.text().await.unwrap()).unwrap();
    let message = reply
        .failure_payload()
        .map(|f| f.message)
        .unwrap_or_default();
    assert!(
        message.contains(&format!(
            "identity {} exceeds 50 requests per second",
            keys[0].id()
        )),
        "{message}"
    );
    let other = serde_json::to_string(&proto::RpcMsg::sign(&read, &keys[1])).unwrap();
    let (status, text) = post_from(site, &base, other.clone()).await;
    assert_eq!(status, 200, "another identity at the same address: {text}");

    // Bad signatures from the site's address still ban it.
    let mut forged = proto::RpcMsg::sign(&read, &keys[2]);
    forged.signature = "00".repeat(65);
    let forged = serde_json::to_string(&forged).unwrap();
    for _ in 0..3 {
        let (status, _) = post_from(site, &base, forged.clone()).await;
        assert_eq!(status, 403);
    }
    let (status, text) = post_from(site, &base, other).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("127.0.0.5 is banned"), "{text}");
    node.stop().await;
}

/// - with `COLONYMESH_LOG_FORMAT=json` every log line of `colonymesh dev` is one JSON object
/// - lines carry their spans: the node's name on node tasks; on a request its node, id,
///   source address and message type
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_node_and_request_spans() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("node.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let env = [
        ("COLONYMESH_LOG_FORMAT", "json"),
        ("COLONYMESH_LOG", "info,node::api=debug"),
    ];
    let (_child, exports) =
        tests::start_dev_logging(&dir.path().join("data"), &env, log.into()).await;
    let port: u16 = exports["COLONIES_SERVER_PORT"].parse().unwrap();
    let client = node::client::Client::new("127.0.0.1", port, false);
    let key = proto::PrivateKey::from_hex(&exports["COLONIES_PRVKEY"]).unwrap();
    let mut spec = TestNode::spec("logged", "cli");
    spec.conditions.colonyname = exports["COLONIES_COLONY_NAME"].clone();
    let _: Process = client
        .call(&Request::Submit(SubmitMsg { spec }), &key)
        .await
        .unwrap();
    let lines: Vec<serde_json::Value> = tests::wait_for(
        "the submit in the log",
        std::time::Duration::from_secs(30),
        || {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            async move {
                let parsed: Vec<serde_json::Value> = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
                    .collect();
                let submitted = parsed
                    .iter()
                    .any(|l| l["span"]["msgtype"] == "submitfuncspecmsg");
                submitted.then_some(parsed)
            }
        },
    )
    .await;
    let ready = lines
        .iter()
        .find(|l| l["fields"]["message"] == "node ready")
        .expect("a node ready line");
    let node = ready["span"]["node"]
        .as_str()
        .expect("the node span")
        .to_string();
    assert!(!node.is_empty());
    let answered = lines
        .iter()
        .find(|l| {
            l["fields"]["message"] == "answered" && l["span"]["msgtype"] == "submitfuncspecmsg"
        })
        .expect("the request's line");
    let span = &answered["span"];
    assert_eq!(span["name"], "request", "{answered}");
    assert_eq!(
        (span["node"].as_str(), span["source"].as_str()),
        (Some(&*node), Some("127.0.0.1"))
    );
    assert!(span["id"].as_u64().is_some(), "{answered}");
    assert_eq!(answered["fields"]["status"], 200, "{answered}");
}
