//! Process channels (`pkg/channel/types.go`): ordered message streams between a process's
//! initiator and its executor. Payloads are bytes: Base64 text on the wire, and a JSON array
//! of byte values is accepted too (pycolonies sends that).

use crate::gotime::GoTime;
use crate::lenient::null_default as nd;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Channel message bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payload(pub Vec<u8>);

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Payload, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Null => Ok(Payload::default()),
            Value::String(text) => BASE64
                .decode(text.as_bytes())
                .map(Payload)
                .map_err(|e| D::Error::custom(format!("payload is not Base64: {e}"))),
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    item.as_u64()
                        .and_then(|b| u8::try_from(b).ok())
                        .ok_or_else(|| D::Error::custom("payload array holds a non-byte value"))
                })
                .collect::<Result<Vec<u8>, _>>()
                .map(Payload),
            _ => Err(D::Error::custom(
                "payload must be Base64 text or an array of bytes",
            )),
        }
    }
}

/// One message of a channel as read back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MsgEntry {
    #[serde(default, deserialize_with = "nd")]
    pub sequence: i64,
    #[serde(default, deserialize_with = "nd", skip_serializing_if = "is_zero")]
    pub inreplyto: i64,
    #[serde(default)]
    pub timestamp: GoTime,
    #[serde(default, deserialize_with = "nd")]
    pub senderid: String,
    #[serde(default)]
    pub payload: Payload,
    #[serde(
        default,
        deserialize_with = "nd",
        rename = "type",
        skip_serializing_if = "String::is_empty"
    )]
    pub kind: String,
    #[serde(
        default,
        deserialize_with = "nd",
        skip_serializing_if = "String::is_empty"
    )]
    pub error: String,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_reads_base64_or_byte_arrays_and_writes_base64() {
        let from_text: Payload = serde_json::from_str(r#""aGk=""#).unwrap();
        let from_array: Payload = serde_json::from_str("[104, 105]").unwrap();
        assert_eq!(from_text, Payload(b"hi".to_vec()));
        assert_eq!(from_array, from_text);
        assert_eq!(serde_json::to_string(&from_array).unwrap(), r#""aGk=""#);
        assert!(serde_json::from_str::<Payload>("[300]").is_err());
        assert!(serde_json::from_str::<Payload>(r#""not base64!""#).is_err());
        let entry = MsgEntry {
            sequence: 1,
            payload: from_text,
            ..MsgEntry::default()
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert!(
            !json.contains("inreplyto") && !json.contains("\"type\""),
            "{json}"
        );
    }
}
