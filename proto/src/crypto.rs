//! ColonyOS identity crypto: secp256k1 recoverable ECDSA over SHA3-256, ids from public keys.
//!
//! A signature is `hex(r(32) || s(32) || v(1))` over SHA3-256 of the UTF-8 bytes of the signed
//! text (for RPCs: the Base64 payload string). An id is `hex(SHA3-256(hex(04||X||Y)))`: the hash is
//! taken over the *hex text* of the uncompressed public key (protocol doc §d.1).

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
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

/// Recovers the signer's id from `data` and a hex signature, rejecting malformed, high-S or
/// non-verifying signatures.
pub fn recover_id(data: &str, signature_hex: &str) -> Result<String, CryptoError> {
    let bytes = hex::decode(signature_hex).map_err(|_| CryptoError::Signature("not hex"))?;
    if bytes.len() != 65 {
        return Err(CryptoError::Signature("must be 65 bytes (130 hex chars)"));
    }
    let signature = Signature::from_slice(&bytes[..64])
        .map_err(|_| CryptoError::Signature("r or s out of range"))?;
    if signature.normalize_s().is_some() {
        return Err(CryptoError::Signature("high-S signatures are not accepted"));
    }
    let recovery_id = match bytes[64] {
        0 | 1 => RecoveryId::from_byte(bytes[64]).expect("0 and 1 are valid recovery ids"),
        _ => return Err(CryptoError::Signature("recovery id must be 0 or 1")),
    };
    let digest = sha3(data.as_bytes());
    let key = VerifyingKey::recover_from_prehash(&digest, &signature, recovery_id)
        .map_err(|_| CryptoError::Signature("public key recovery failed"))?;
    // recover_from_prehash verifies the signature against the recovered key.
    Ok(id_from_public_key(&key))
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
