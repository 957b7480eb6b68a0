//! Bad input gets the ColonyOS error envelope with a 4xx status and a message naming the
//! problem; state does not change and the node keeps serving.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use proto::msgs::{ColonyNameMsg, GetProcessesMsg, SubmitMsg};
use proto::{FunctionSpec, PrivateKey, Request, RpcMsg, RpcReply, Statistics};
use tests::{Options, TestNode};

/// Posts raw bytes to `/api` and returns the HTTP status and the failure message.
async fn post(node: &TestNode, body: Vec<u8>) -> (u16, String) {
    let url = format!("http://{}/api", node.handle.api_addr);
    let response = reqwest::Client::new()
        .post(url)
        .body(body)
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    let reply: RpcReply = response.json().await.expect("an envelope even for errors");
    assert!(reply.error, "status {status} should be an error reply");
    assert_eq!(reply.payloadtype, "error");
    let failure = reply.failure_payload().expect("failure payload");
    assert_eq!(
        failure.status,
        i32::from(status),
        "payload status mirrors HTTP status"
    );
    (status, failure.message)
}

fn envelope(msg: &RpcMsg) -> Vec<u8> {
    serde_json::to_vec(msg).unwrap()
}

#[track_caller]
fn check(actual: (u16, String), status: u16, needle: &str) {
    assert_eq!(actual.0, status, "{}", actual.1);
    assert!(
        actual.1.contains(needle),
        "message {:?} should mention {needle:?}",
        actual.1
    );
}

/// s' = n - s on secp256k1: the same signature in its high-S form.
fn negate_s(signature_hex: &str) -> String {
    const ORDER: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFE, 0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36,
        0x41, 0x41,
    ];
    let mut bytes = hex_decode(signature_hex);
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let diff = i16::from(ORDER[i]) - i16::from(bytes[32 + i]) - borrow;
        bytes[32 + i] = diff.rem_euclid(256) as u8;
        borrow = i16::from(diff < 0);
    }
    bytes[64] ^= 1;
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

async fn waiting_count(node: &TestNode) -> i64 {
    let stats = Request::GetColonyStats(ColonyNameMsg {
        colonyname: "dev".into(),
    });
    let stats: Statistics = node
        .client
        .call(&stats, &node.executor)
        .await
        .expect("node serves");
    stats.waitingprocesses
}

/// - malformed envelopes, payloads and signatures, unknown and mismatched types, oversize
///   bodies and out-of-range values are each refused with a named reason
/// - no process was created, and the node still answers
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_reasons() {
    let node = TestNode::start_with(Options {
        body_bytes_max: Some(4096),
        ..Options::default()
    })
    .await;
    let key = &node.executor;
    let valid = RpcMsg::sign(
        &Request::Submit(SubmitMsg {
            spec: TestNode::spec("x", "cli"),
        }),
        key,
    );

    tracing::info!("--- envelope");
    check(
        post(&node, b"{not json".to_vec()).await,
        400,
        "malformed request envelope",
    );
    let bad_base64 = RpcMsg {
        payload: "%%%".into(),
        signature: key.sign("%%%"),
        ..valid.clone()
    };
    check(post(&node, envelope(&bad_base64)).await, 400, "base64");
    let json_garbage = BASE64.encode("[1,2");
    let garbage = RpcMsg {
        signature: key.sign(&json_garbage),
        payload: json_garbage,
        ..valid.clone()
    };
    // ColonyOS's words for the handler, then what was wrong.
    check(
        post(&node, envelope(&garbage)).await,
        400,
        "Failed to submit process, invalid JSON: payload is not valid json",
    );

    tracing::info!("--- signatures");
    let bad_hex = RpcMsg {
        signature: "zz".into(),
        ..valid.clone()
    };
    check(
        post(&node, envelope(&bad_hex)).await,
        403,
        "invalid signature",
    );
    let high_s = RpcMsg {
        signature: negate_s(&valid.signature),
        ..valid.clone()
    };
    check(post(&node, envelope(&high_s)).await, 403, "high-S");
    let stranger = RpcMsg::sign(
        &Request::Submit(SubmitMsg {
            spec: TestNode::spec("x", "cli"),
        }),
        &PrivateKey::from_entropy([9; 32]),
    );
    check(post(&node, envelope(&stranger)).await, 403, "not a member");

    tracing::info!("--- payload types");
    let mismatch = RpcMsg {
        payloadtype: "getprocessmsg".into(),
        ..valid.clone()
    };
    check(
        post(&node, envelope(&mismatch)).await,
        400,
        "Failed to get process, msg.MsgType does not match payloadType: msgtype",
    );
    let unknown_payload = BASE64.encode(r#"{"msgtype":"getnodesmsg"}"#);
    let unknown = RpcMsg {
        payloadtype: "getnodesmsg".into(),
        signature: key.sign(&unknown_payload),
        payload: unknown_payload,
    };
    check(
        post(&node, envelope(&unknown)).await,
        403,
        "invalid rpcMsg.PayloadType",
    );

    tracing::info!("--- sizes and ranges");
    let mut big = TestNode::spec("big", "cli");
    big.args = vec!["x".repeat(8192).into()];
    let oversize = RpcMsg::sign(&Request::Submit(SubmitMsg { spec: big }), key);
    check(
        post(&node, envelope(&oversize)).await,
        413,
        "exceeds the limit of 4096 bytes",
    );
    let urgent = FunctionSpec {
        priority: 60_000,
        ..TestNode::spec("x", "cli")
    };
    let urgent = RpcMsg::sign(&Request::Submit(SubmitMsg { spec: urgent }), key);
    check(
        post(&node, envelope(&urgent)).await,
        400,
        "priority 60000 is outside",
    );
    let mut greedy = TestNode::spec("x", "cli");
    greedy.conditions.mem = "5Qi".into();
    let greedy = RpcMsg::sign(&Request::Submit(SubmitMsg { spec: greedy }), key);
    check(
        post(&node, envelope(&greedy)).await,
        400,
        "invalid memory unit",
    );
    let many = Request::GetProcesses(GetProcessesMsg {
        colonyname: "dev".into(),
        count: 1000,
        ..Default::default()
    });
    check(
        post(&node, envelope(&RpcMsg::sign(&many, key))).await,
        400,
        "count 1000 exceeds",
    );
    let bad_state = Request::GetProcesses(GetProcessesMsg {
        colonyname: "dev".into(),
        count: 1,
        state: 9,
        ..Default::default()
    });
    check(
        post(&node, envelope(&RpcMsg::sign(&bad_state, key))).await,
        400,
        "invalid process state 9",
    );
    let wrong_type = BASE64.encode(r#"{"msgtype":"assignprocessmsg","timeout":"soon"}"#);
    let wrong_type = RpcMsg {
        payloadtype: "assignprocessmsg".into(),
        signature: key.sign(&wrong_type),
        payload: wrong_type,
    };
    check(
        post(&node, envelope(&wrong_type)).await,
        400,
        "invalid assignprocessmsg payload",
    );

    tracing::info!("--- nothing changed, still serving");
    assert_eq!(waiting_count(&node).await, 0);
    let submit = Request::Submit(SubmitMsg {
        spec: TestNode::spec("x", "cli"),
    });
    let _: proto::Process = node
        .client
        .call(&submit, key)
        .await
        .expect("valid input works");
    assert_eq!(waiting_count(&node).await, 1);
    node.stop().await;
}
