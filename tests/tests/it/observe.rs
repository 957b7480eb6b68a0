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
