//! Serde helpers that make decoding as forgiving as Go's `encoding/json`.
//!
//! Go leaves a field at its zero value when the key is missing *or* `null`; serde's `default`
//! only covers the missing case. `null_default` covers both and is used on every field whose
//! type has a natural zero (strings, numbers, lists, maps).

use serde::{Deserialize, Deserializer};

/// Deserializes `null` (or a missing key, with `#[serde(default)]`) as `T::default()`.
pub fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
