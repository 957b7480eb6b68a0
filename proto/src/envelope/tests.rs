//! Envelope round trips and the refusals of §i (bad Base64, msgtype mismatch, unknown types).

use super::*;
use crate::msgs::{ColonyNameMsg, Request};

fn executor_key() -> PrivateKey {
    PrivateKey::from_hex("ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05")
        .unwrap()
}

#[test]
fn go_envelope_vector_opens() {
    let msg = RpcMsg {
        signature: "aaea4f14c8bf827267377593bd2253940b5602d06e392cf7752f54f956e24b7d285fe6f21446ed\
                    28f25259f6ad2a64ca90dd20eeeb9532c0b443c73d191e1e5900"
            .to_string(),
        payloadtype: "getcolonymsg".to_string(),
        payload: "eyJjb2xvbnluYW1lIjoiZGV2IiwibXNndHlwZSI6ImdldGNvbG9ueW1zZyJ9".to_string(),
    };
    assert_eq!(msg.caller_id().unwrap(), executor_key().id());
    let Request::GetColony(inner) = msg.request().unwrap() else {
        panic!("wrong variant")
    };
    assert_eq!(inner.colonyname, "dev");
}

#[test]
fn signed_request_round_trips() {
    let request = Request::GetColony(ColonyNameMsg {
        colonyname: "dev".into(),
    });
    let msg = RpcMsg::sign(&request, &executor_key());
    assert_eq!(msg.payloadtype, "getcolonymsg");
    assert_eq!(msg.caller_id().unwrap(), executor_key().id());
    assert_eq!(msg.request().unwrap(), request);
}

#[test]
fn mismatched_msgtype_is_refused() {
    let request = Request::GetColony(ColonyNameMsg {
        colonyname: "dev".into(),
    });
    let mut msg = RpcMsg::sign(&request, &executor_key());
    msg.payloadtype = "getcoloniesmsg".to_string();
    assert_eq!(
        msg.request().unwrap_err(),
        EnvelopeError::MsgTypeMismatch {
            msgtype: "getcolonymsg".into(),
            payloadtype: "getcoloniesmsg".into()
        }
    );
}

#[test]
fn bad_base64_and_unknown_types_are_named() {
    let msg = RpcMsg {
        payloadtype: "x".into(),
        payload: "!!!".into(),
        ..RpcMsg::default()
    };
    assert!(matches!(
        msg.request().unwrap_err(),
        EnvelopeError::Base64(_)
    ));
    let payload = BASE64.encode(r#"{"msgtype":"getnodesmsg"}"#);
    let msg = RpcMsg {
        payloadtype: "getnodesmsg".into(),
        payload,
        ..RpcMsg::default()
    };
    assert_eq!(
        msg.request().unwrap_err().to_string(),
        "invalid rpcMsg.PayloadType: \"getnodesmsg\""
    );
}

#[test]
fn failure_reply_matches_go_shape() {
    let reply = RpcReply::failure(403, "access denied");
    let text = serde_json::to_string(&reply).unwrap();
    assert!(
        text.starts_with(r#"{"payloadtype":"error","payload":""#),
        "{text}"
    );
    assert!(text.ends_with(r#","error":true}"#), "{text}");
    let failure = reply.failure_payload().unwrap();
    assert_eq!(
        failure,
        Failure {
            status: 403,
            message: "access denied".into()
        }
    );
}
