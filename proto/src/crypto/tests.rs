//! Test vectors from colonyos-protocol.md §f (Go crypto and pycolonies agree on all of them).

use super::*;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};

#[test]
fn sha3_of_hello_world() {
    assert_eq!(
        sha3_hex(b"hello world"),
        "644bcc7e564373040999aac89e7622f3ca71fba1d972fd94a31c3bfbf24e3938"
    );
    assert_eq!(
        sha3_hex(b"hello"),
        "3338be694f50c5f338814986cdf0686453a888b84f424d792af4b9202398f392"
    );
}

#[test]
fn id_and_public_key_from_private_key() {
    let key =
        PrivateKey::from_hex("6d2fb6f546bacfd98c68769e61e0b44a697a30596c018a50e28200aa59b01c0a")
            .unwrap();
    assert_eq!(
        key.public_key_hex(),
        "0408e903276ee7973666dceeefa5335e5c4b6b5989821906db98f8de8acf8f853824ca3234a8602200baa2d\
         75f30cb2050cda18602824c3eb2da654a93a01a7ad4"
    );
    assert_eq!(
        key.id(),
        "4fef2b5a82d134d058c1883c72d6d9caf77cd59ca82d73105017590dea3dcb87"
    );
}

#[test]
fn interop_signature_recovers_signer() {
    let key =
        PrivateKey::from_hex("d6eb959e9aec2e6fdc44b5862b269e987b8a4d6f2baca542d8acaa97ee5e74f6")
            .unwrap();
    assert_eq!(
        key.id(),
        "5d6568f883451ae2e407d1a0a7992e414f2a67b69d0e6e9176d353b98f06f696"
    );
    assert_eq!(
        key.public_key_hex(),
        "0458d9f552e9794ad73bd4ab77dfe1c7509542ab3121991e20233955f8fc79c266fd55390ddf3b3309417c7\
         8c9ebe2b572dfdf0b2f8eb4b468a6e19176a5f2b1c7"
    );
    let signature = "997eca36736d465e0e8d64e6d657ff4c939c8f5cad4272797ea0fe372bfd8d0953d21b3d06\
                     ded5dd80aee8cfa3a9be7ce615ce690eb64184fe15962943fe541300";
    assert_eq!(recover_id("hello", signature).unwrap(), key.id());
}

#[test]
fn deterministic_signature_matches_go_and_pycolonies() {
    let key =
        PrivateKey::from_hex("d6eb959e9aec2e6fdc44b5862b269e987b8a4d6f2baca542d8acaa97ee5e74f6")
            .unwrap();
    assert_eq!(
        key.sign("hello"),
        "e713a1bb015fecabb5a084b0fe6d6e7271fca6f79525a634183cfdb175fe69241f4da161779d8e6b761200e\
         1cf93766010a19072fa778f9643363e2cfadd640900"
    );
}

#[test]
fn dev_keys_have_documented_ids() {
    let cases = [
        (
            "fcc79953d8a751bf41db661592dc34d30004b1a651ffa0725b03ac227641499d",
            "039231c7644e04b6895471dd5335cf332681c54e27f81fac54f9067b3f2c0103",
        ),
        (
            "ba949fa134981372d6da62b6a56f336ab4d843b22c02a4257dcf7d0d73097514",
            "4787a5071856a4acf702b2ffcea422e3237a679c681314113d86139461290cf4",
        ),
        (
            "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05",
            "3fc05cf3df4b494e95d6a3d297a34f19938f7daa7422ab0d4f794454133341ac",
        ),
    ];
    for (prvkey, id) in cases {
        assert_eq!(PrivateKey::from_hex(prvkey).unwrap().id(), id);
    }
}

/// The full RPC envelope vectors of §f: each signature is reproduced byte for byte and
/// recovers to its signer.
#[test]
fn envelope_signatures_match_vectors() {
    let executor = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05";
    let server = "fcc79953d8a751bf41db661592dc34d30004b1a651ffa0725b03ac227641499d";
    let colony = "ba949fa134981372d6da62b6a56f336ab4d843b22c02a4257dcf7d0d73097514";
    let cases = [
        (
            executor,
            "eyJjb2xvbnluYW1lIjoiZGV2IiwibXNndHlwZSI6ImdldGNvbG9ueW1zZyJ9",
            "743afddc3c074e2f5c87729c36bdff0b76bd4f6b783d76431f81ad35f170fa59",
            "aaea4f14c8bf827267377593bd2253940b5602d06e392cf7752f54f956e24b7d285fe6f21446ed28f\
             25259f6ad2a64ca90dd20eeeb9532c0b443c73d191e1e5900",
        ),
        (
            executor,
            "eyJjb2xvbnluYW1lIjoiZGV2IiwidGltZW91dCI6MTAsImF2YWlsYWJsZWNwdSI6IiIsImF2YWlsYWJsZW\
             1lbSI6IiIsIm1zZ3R5cGUiOiJhc3NpZ25wcm9jZXNzbXNnIn0=",
            "d70b37d75bba204354666de34419a72f305c6c83390e8598618696466ac10f75",
            "2a721e71e0ce37be7bbbb2aeba5668bcecf4341c9a50913ae92816a796ad98d0644c6896c5ac1904a\
             044c45356ea502a1296eb52bbe4f28d58924118851539c101",
        ),
        (
            server,
            "eyJjb2xvbnkiOnsiY29sb255aWQiOiI0Nzg3YTUwNzE4NTZhNGFjZjcwMmIyZmZjZWE0MjJlMzIzN2E2Nzlj\
             NjgxMzE0MTEzZDg2MTM5NDYxMjkwY2Y0IiwibmFtZSI6ImRldiJ9LCJtc2d0eXBlIjoiYWRkY29sb255bXNn\
             In0=",
            "f733bd8a5e8eb0c37880a9192130bb8a0a997ef3fef9295395053d5e52f187e5",
            "ae6d33a12c670db06439bc13de1f08f1f8aa0686c1da56928e22d91af5c71e63143b6f3a6e1b44ba0\
             4d015802adc28ba3ebb8cb1b7c7c662bfdc47bef4ef509400",
        ),
        (
            colony,
            "eyJleGVjdXRvciI6eyJleGVjdXRvcmlkIjoiM2ZjMDVjZjNkZjRiNDk0ZTk1ZDZhM2QyOTdhMzRmMTk5Mzhm\
             N2RhYTc0MjJhYjBkNGY3OTQ0NTQxMzMzNDFhYyIsImV4ZWN1dG9ydHlwZSI6ImNsaSIsImV4ZWN1dG9ybmFt\
             ZSI6ImRldi1kb2NrZXIiLCJjb2xvbnluYW1lIjoiZGV2In0sIm1zZ3R5cGUiOiJhZGRleGVjdXRvcm1zZyJ9",
            "8e8d04c955d46e69dedd70bb48ab201db20ca861c0a19326166d538360c06347",
            "105c5fed26450badb8640968afcfa26cbaa1422f9dfb5c0b3c3efcfa0f8f461c12b67785a9bbf811c\
             a105391da2b4339bd1fc101178df4274d5952674dafd39e01",
        ),
    ];
    for (prvkey, payload, digest, signature) in cases {
        let key = PrivateKey::from_hex(prvkey).unwrap();
        assert_eq!(sha3_hex(payload.as_bytes()), digest);
        assert_eq!(key.sign(payload), signature);
        assert_eq!(recover_id(payload, signature).unwrap(), key.id());
    }
}

#[test]
fn high_s_signature_is_rejected() {
    let key =
        PrivateKey::from_hex("d6eb959e9aec2e6fdc44b5862b269e987b8a4d6f2baca542d8acaa97ee5e74f6")
            .unwrap();
    let low = hex::decode(key.sign("hello")).unwrap();
    let signature = Signature::from_slice(&low[..64]).unwrap();
    // Flip s to n - s: still a valid ECDSA signature, but high-S, which ColonyOS refuses.
    let (r, s) = signature.split_scalars();
    let high = Signature::from_scalars(r, -*s).unwrap();
    let mut bytes = high.to_bytes().to_vec();
    bytes.push(low[64] ^ 1);
    let err = recover_id("hello", &hex::encode(bytes)).unwrap_err();
    assert_eq!(
        err,
        CryptoError::Signature("high-S signatures are not accepted")
    );
}

#[test]
fn malformed_signatures_are_rejected_with_reasons() {
    assert_eq!(
        recover_id("x", "zz").unwrap_err(),
        CryptoError::Signature("not hex")
    );
    assert_eq!(
        recover_id("x", "00ff").unwrap_err(),
        CryptoError::Signature("must be 65 bytes (130 hex chars)")
    );
    let key =
        PrivateKey::from_hex("d6eb959e9aec2e6fdc44b5862b269e987b8a4d6f2baca542d8acaa97ee5e74f6")
            .unwrap();
    let mut bytes = hex::decode(key.sign("hello")).unwrap();
    bytes[64] = 7;
    assert_eq!(
        recover_id("hello", &hex::encode(&bytes)).unwrap_err(),
        CryptoError::Signature("recovery id must be 0 or 1")
    );
    // A signature over other data recovers some other id, never the signer's.
    let signature = key.sign("hello");
    assert_ne!(recover_id("hellO", &signature).ok(), Some(key.id()));
}

#[test]
fn private_key_parsing_names_the_problem() {
    assert_eq!(
        PrivateKey::from_hex("xyz").unwrap_err(),
        CryptoError::PrivateKey("not hex")
    );
    assert_eq!(
        PrivateKey::from_hex("00").unwrap_err(),
        CryptoError::PrivateKey("must be 32 bytes (64 hex chars)")
    );
    let zero = "0".repeat(64);
    assert_eq!(
        PrivateKey::from_hex(&zero).unwrap_err(),
        CryptoError::PrivateKey("not a valid secp256k1 scalar")
    );
    let key = PrivateKey::from_entropy([7; 32]);
    assert_eq!(PrivateKey::from_hex(&key.to_hex()).unwrap().id(), key.id());
}

#[test]
fn zero_r_or_s_is_out_of_range() {
    let key = PrivateKey::from_entropy([3; 32]);
    let good = hex::decode(key.sign("hello")).unwrap();
    for range in [0..32, 32..64] {
        let mut bytes = good.clone();
        bytes[range].fill(0);
        assert_eq!(
            recover_id("hello", &hex::encode(&bytes)).unwrap_err(),
            CryptoError::Signature("r or s out of range")
        );
    }
    let mut bytes = good;
    bytes[32..64].fill(0xff);
    assert_eq!(
        recover_id("hello", &hex::encode(&bytes)).unwrap_err(),
        CryptoError::Signature("r or s out of range")
    );
}

/// libsecp256k1 recovers the key that k256's recover-and-verify recovers, for keys and
/// messages of many shapes (the server recovers with one, clients sign with the other).
#[test]
fn libsecp256k1_recovery_agrees_with_k256() {
    for i in 0u8..64 {
        let key = PrivateKey::from_entropy([i; 32]);
        let data = "x".repeat(usize::from(i) * 37);
        let signature = key.sign(&data);
        let bytes = hex::decode(&signature).unwrap();
        let parsed = Signature::from_slice(&bytes[..64]).unwrap();
        let recovery_id = RecoveryId::from_byte(bytes[64]).unwrap();
        let by_k256 =
            VerifyingKey::recover_from_prehash(&digest(&data), &parsed, recovery_id).unwrap();
        assert_eq!(id_from_public_key(&by_k256), key.id());
        let recovered = RecoverableSignature::from_hex(&signature).unwrap();
        assert_eq!(recovered.recover(&digest(&data)).unwrap(), key.id());
        // The other recovery id names another key (or none), never the signer.
        let mut flipped = bytes.clone();
        flipped[64] ^= 1;
        assert_ne!(
            recover_id(&data, &hex::encode(flipped)).ok(),
            Some(key.id())
        );
    }
}
