//! Fuzz target: signature recovery. Arbitrary data and signature text never panic; a key
//! made from the first 32 bytes signs the rest, and recovery names exactly that key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::crypto::{recover_id, PrivateKey};

fuzz_target!(|data: &[u8]| {
    let (payload, signature) = data.split_at(data.len() / 2);
    let payload = String::from_utf8_lossy(payload);
    let _ = recover_id(&payload, &String::from_utf8_lossy(signature));
    if data.len() >= 32 {
        let entropy: [u8; 32] = data[..32].try_into().expect("32 bytes");
        let key = PrivateKey::from_entropy(entropy);
        let payload = String::from_utf8_lossy(&data[32..]);
        let signature = key.sign(&payload);
        assert_eq!(recover_id(&payload, &signature).ok(), Some(key.id()));
    }
});
