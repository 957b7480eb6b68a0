//! ColonyOS identity crypto: secp256k1 recoverable ECDSA over SHA3-256, ids from public keys.
//!
//! A signature is `hex(r(32) || s(32) || v(1))` over SHA3-256 of the UTF-8 bytes of the signed
//! text (for RPCs: the Base64 payload string). An id is `hex(SHA3-256(hex(04||X||Y)))`: the hash is
//! taken over the *hex text* of the uncompressed public key (protocol doc §d.1).
//!
//! Signing uses `k256` (pure Rust, what clients need). Recovery, which the server runs for
//! every request, uses libsecp256k1 (the `secp256k1` crate): about 45 µs instead of 240 µs
//! here, because k256's `recover_from_prehash` recovers and then verifies again.

use k256::ecdsa::{SigningKey, VerifyingKey};
use sha3::{Digest, Sha3_256};

/// Why a key or signature was refused. Messages name the problem for the API's 403 reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid private key: {0}")]
    PrivateKey(&'static str),
    #[error("invalid signature: {0}")]
    Signature(&'static str),
}

/// SHA3-256 of `data`, hex encoded (lowercase).
pub fn sha3_hex(data: &[u8]) -> String {
    hex::encode(Sha3_256::digest(data))
}

fn sha3(data: &[u8]) -> [u8; 32] {
    Sha3_256::digest(data).into()
}

/// A ColonyOS private key (32 bytes, shown as 64 lowercase hex chars).
#[derive(Clone)]
pub struct PrivateKey {
    key: SigningKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret; the id is enough to tell keys apart.
        write!(f, "PrivateKey(id={})", self.id())
    }
}

impl PrivateKey {
    /// Parses a hex private key (64 hex chars, `0 < d < n`).
    pub fn from_hex(text: &str) -> Result<PrivateKey, CryptoError> {
        let bytes = hex::decode(text.trim()).map_err(|_| CryptoError::PrivateKey("not hex"))?;
        if bytes.len() != 32 {
            return Err(CryptoError::PrivateKey("must be 32 bytes (64 hex chars)"));
        }
        let key = SigningKey::from_slice(&bytes)
            .map_err(|_| CryptoError::PrivateKey("not a valid secp256k1 scalar"))?;
        Ok(PrivateKey { key })
    }

    /// Makes a key from 32 bytes of entropy (the caller owns the randomness source).
    /// Like pycolonies, the scalar is SHA3-256 of the entropy, retried until it is valid.
    pub fn from_entropy(entropy: [u8; 32]) -> PrivateKey {
        let mut seed = sha3(&entropy);
        loop {
            if let Ok(key) = SigningKey::from_slice(&seed) {
                return PrivateKey { key };
            }
            seed = sha3(&seed);
        }
    }

    /// The private key as 64 lowercase hex chars.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// Uncompressed public key `04||X||Y` as 130 lowercase hex chars.
    pub fn public_key_hex(&self) -> String {
        public_key_hex(self.key.verifying_key())
    }

    /// The ColonyOS id of this key.
    pub fn id(&self) -> String {
        id_from_public_key(self.key.verifying_key())
    }

    /// Signs `data` (RFC 6979 deterministic nonce, low-S) and returns the 130-hex-char signature.
    pub fn sign(&self, data: &str) -> String {
        let digest = sha3(data.as_bytes());
        let (signature, recovery_id) = self
            .key
            .sign_prehash_recoverable(&digest)
            .expect("signing a 32-byte prehash with a valid key cannot fail");
        // k256 already normalizes to low-S; the recovery id accounts for that.
        let mut bytes = signature.to_bytes().to_vec();
        bytes.push(recovery_id.to_byte());
        hex::encode(bytes)
    }
}

fn public_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.to_encoded_point(false).as_bytes())
}

fn id_from_public_key(key: &VerifyingKey) -> String {
    sha3_hex(public_key_hex(key).as_bytes())
}

/// The SHA3-256 digest a signature over `data` covers.
pub fn digest(data: &str) -> [u8; 32] {
    sha3(data.as_bytes())
}

/// A signature whose form is valid: 65 bytes, `r` and `s` in range, low-S, recovery id 0 or
/// 1. Whether it recovers a key for a given digest is `recover`'s question.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecoverableSignature {
    bytes: [u8; 65],
}

impl RecoverableSignature {
    /// Parses a hex signature, rejecting malformed and high-S ones with the reason.
    pub fn from_hex(signature_hex: &str) -> Result<RecoverableSignature, CryptoError> {
        let bytes = hex::decode(signature_hex).map_err(|_| CryptoError::Signature("not hex"))?;
        let bytes: [u8; 65] = bytes
            .try_into()
            .map_err(|_| CryptoError::Signature("must be 65 bytes (130 hex chars)"))?;
        let out_of_range = CryptoError::Signature("r or s out of range");
        if bytes[..32].iter().all(|&b| b == 0) || bytes[32..64].iter().all(|&b| b == 0) {
            return Err(out_of_range);
        }
        // Any recovery id parses the same r and s; the real one is checked below.
        let zero = secp256k1::ecdsa::RecoveryId::Zero;
        let parsed = secp256k1::ecdsa::RecoverableSignature::from_compact(&bytes[..64], zero)
            .map_err(|_| out_of_range)?;
        let standard = parsed.to_standard();
        let mut low = standard;
        low.normalize_s();
        if low != standard {
            return Err(CryptoError::Signature("high-S signatures are not accepted"));
        }
        if bytes[64] > 1 {
            return Err(CryptoError::Signature("recovery id must be 0 or 1"));
        }
        Ok(RecoverableSignature { bytes })
    }

    /// The 65 bytes `r || s || v`.
    pub fn as_bytes(&self) -> &[u8; 65] {
        &self.bytes
    }

    /// The id of the key that made this signature over `digest` (libsecp256k1). A recovered
    /// key always verifies the signature: recovery solves the verification equation for it.
    pub fn recover(&self, digest: &[u8; 32]) -> Result<String, CryptoError> {
        let failed = CryptoError::Signature("public key recovery failed");
        let recovery_id = match self.bytes[64] {
            0 => secp256k1::ecdsa::RecoveryId::Zero,
            _ => secp256k1::ecdsa::RecoveryId::One,
        };
        let signature =
            secp256k1::ecdsa::RecoverableSignature::from_compact(&self.bytes[..64], recovery_id)
                .map_err(|_| failed.clone())?;
        let key = signature
            .recover_ecdsa(secp256k1::Message::from_digest(*digest))
            .map_err(|_| failed)?;
        Ok(sha3_hex(
            hex::encode(key.serialize_uncompressed()).as_bytes(),
        ))
    }
}

/// Recovers the signer's id from `data` and a hex signature, rejecting malformed, high-S or
/// non-verifying signatures.
pub fn recover_id(data: &str, signature_hex: &str) -> Result<String, CryptoError> {
    RecoverableSignature::from_hex(signature_hex)?.recover(&digest(data))
}

/// True when `text` looks like a ColonyOS id: 64 lowercase-or-uppercase hex characters.
pub fn is_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests;

/// SHA3-256 of everything written to it, for data too large to hold in memory.
#[derive(Default)]
pub struct Sha3Writer(Sha3_256);

impl Sha3Writer {
    /// The digest of everything written, hex encoded (lowercase); equal to `sha3_hex` of it.
    pub fn finish_hex(self) -> String {
        hex::encode(self.0.finalize())
    }
}

impl std::io::Write for Sha3Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        Digest::update(&mut self.0, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
