//! Fuzz target: the JSON decoders of every message type. The first byte picks the payload
//! type, the rest is the payload JSON. Decoding never panics; what decodes re-encodes to the
//! same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::Request;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    let Ok(json) = std::str::from_utf8(json) else {
        return;
    };
    let payloadtype = Request::MSGTYPES[usize::from(pick) % Request::MSGTYPES.len()];
    if let Ok(request) = Request::decode(payloadtype, json) {
        let again = Request::decode(payloadtype, &request.to_json())
            .expect("a decoded request re-encodes to a decodable payload");
        assert_eq!(again, request);
    }
});
