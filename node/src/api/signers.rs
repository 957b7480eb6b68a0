//! Who signed a request: the caller id recovered from an envelope's signature, with a small
//! bounded cache of recent (payload digest, signature) -> id, so an identical envelope (an
//! executor's repeated assign poll, a client retrying) costs a hash instead of a recovery.
//!
//! A cache entry is made only after a successful recovery, and a hit needs the same digest and
//! the same 65 signature bytes, so the cache can never name a caller the signature does not.

use proto::crypto::{self, CryptoError, RecoverableSignature};
use std::collections::HashMap;
use std::sync::Mutex;

/// Recovered callers remembered per generation; two generations are kept, so the cache holds
/// between this many and twice this many entries (about 200 bytes each).
const SIGNERS_CACHED_MAX: usize = 4096;

type Key = ([u8; 32], [u8; 65]);

/// The cache; shared by every request of a node.
pub struct Signers {
    /// Two generations: lookups check both, inserts go to `current`, and a full `current`
    /// becomes `previous` (the older one is dropped). Bounded, and O(1) per request.
    generations: Mutex<Generations>,
    /// Entries per generation (`SIGNERS_CACHED_MAX`; smaller in tests).
    per_generation: usize,
}

#[derive(Default)]
struct Generations {
    current: HashMap<Key, String>,
    previous: HashMap<Key, String>,
}

impl Default for Signers {
    fn default() -> Signers {
        Signers::with_capacity(SIGNERS_CACHED_MAX)
    }
}

impl Signers {
    fn with_capacity(per_generation: usize) -> Signers {
        Signers {
            generations: Mutex::new(Generations::default()),
            per_generation,
        }
    }

    /// The id of the key that signed `payload` with `signature_hex`, or why the signature is
    /// refused.
    pub fn caller(&self, payload: &str, signature_hex: &str) -> Result<String, CryptoError> {
        let signature = RecoverableSignature::from_hex(signature_hex)?;
        let key = (crypto::digest(payload), *signature.as_bytes());
        if let Some(id) = self.lookup(&key) {
            return Ok(id);
        }
        // Recovery takes tens of microseconds: never under the lock.
        let id = signature.recover(&key.0)?;
        self.insert(key, id.clone());
        Ok(id)
    }

    fn generations(&self) -> std::sync::MutexGuard<'_, Generations> {
        // The maps hold only verified results; a panic elsewhere cannot make them wrong.
        self.generations.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lookup(&self, key: &Key) -> Option<String> {
        let generations = self.generations();
        generations
            .current
            .get(key)
            .or_else(|| generations.previous.get(key))
            .cloned()
    }

    fn insert(&self, key: Key, id: String) {
        let mut generations = self.generations();
        if generations.current.len() >= self.per_generation {
            generations.previous = std::mem::take(&mut generations.current);
        }
        generations.current.insert(key, id);
    }

    /// Entries held now (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        let generations = self.generations();
        generations.current.len() + generations.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::PrivateKey;

    #[test]
    fn cached_and_fresh_recoveries_name_the_signer() {
        let signers = Signers::default();
        let key = PrivateKey::from_entropy([1; 32]);
        let signature = key.sign("payload");
        assert_eq!(signers.caller("payload", &signature).unwrap(), key.id());
        assert_eq!(signers.len(), 1);
        assert_eq!(signers.caller("payload", &signature).unwrap(), key.id());
        assert_eq!(signers.len(), 1, "the second call is a hit");
        // The same signature over another payload is another key: never the cached id.
        assert_ne!(signers.caller("payloaD", &signature).ok(), Some(key.id()));
    }

    #[test]
    fn refusals_are_not_cached_and_name_the_reason() {
        let signers = Signers::default();
        let key = PrivateKey::from_entropy([2; 32]);
        let mut bytes = hex::decode(key.sign("x")).unwrap();
        bytes[64] = 5;
        let refused = signers.caller("x", &hex::encode(bytes)).unwrap_err();
        assert_eq!(
            refused,
            CryptoError::Signature("recovery id must be 0 or 1")
        );
        assert_eq!(signers.len(), 0);
    }

    #[test]
    fn the_cache_is_bounded() {
        let signers = Signers::with_capacity(8);
        let key = PrivateKey::from_entropy([3; 32]);
        for i in 0..40 {
            let payload = i.to_string();
            let signature = key.sign(&payload);
            assert_eq!(signers.caller(&payload, &signature).unwrap(), key.id());
            assert!(signers.len() <= 16);
        }
        // The newest entries are still there.
        let signature = key.sign("39");
        let before = signers.len();
        assert_eq!(signers.caller("39", &signature).unwrap(), key.id());
        assert_eq!(signers.len(), before);
    }
}
