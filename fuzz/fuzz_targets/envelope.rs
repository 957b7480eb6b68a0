//! Fuzz target: a whole `POST /api` body. Parsing the envelope, recovering the signer and
//! decoding the payload must never panic, and a decoded request must survive re-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::{Request, RpcMsg};

fuzz_target!(|body: &[u8]| {
    let Ok(msg) = serde_json::from_slice::<RpcMsg>(body) else {
        return;
    };
    let _ = msg.caller_id();
    if let Ok(request) = msg.request() {
        let again = Request::decode(request.msgtype(), &request.to_json())
            .expect("a decoded request re-encodes to a decodable payload");
        assert_eq!(again, request);
    }
});
