//! The ColonyOS RPC envelope: `{"signature","payloadtype","payload"}` in, and
//! `{"payloadtype","payload","error"}` out, with the payload as standard Base64 of JSON.
//!
//! ```text
//!   client: Request --json--> payload text --base64--> B --sign(B)--> RpcMsg
//!   node:   RpcMsg --recover_id(B, sig)--> caller id
//!                  --base64 decode--> json --msgtype == payloadtype?--> Request
//! ```

use crate::crypto::{self, CryptoError, PrivateKey};
use crate::msgs::Request;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// A signed request as POSTed to `/api` (Go field order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcMsg {
    #[serde(default, deserialize_with = "crate::lenient::null_default")]
    pub signature: String,
    #[serde(default, deserialize_with = "crate::lenient::null_default")]
    pub payloadtype: String,
    #[serde(default, deserialize_with = "crate::lenient::null_default")]
    pub payload: String,
}

/// The reply to every request; `error` is always present.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcReply {
    #[serde(default, deserialize_with = "crate::lenient::null_default")]
    pub payloadtype: String,
    #[serde(default, deserialize_with = "crate::lenient::null_default")]
    pub payload: String,
    #[serde(default, deserialize_with = "crate::lenient::null_default")]
    pub error: bool,
}

/// The payload of an error reply (`pkg/core/failure.go`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    #[serde(default, deserialize_with = "crate::lenient::null_default")]
    pub status: i32,
    #[serde(default, deserialize_with = "crate::lenient::null_default")]
    pub message: String,
}

/// Why an envelope could not be opened. Each maps to a 4xx with this text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("payload is not valid base64: {0}")]
    Base64(String),
    #[error("payload is not valid utf-8 json text")]
    Utf8,
    #[error("payload is not valid json: {0}")]
    Json(String),
    #[error("msgtype {msgtype:?} does not match payloadtype {payloadtype:?}")]
    MsgTypeMismatch {
        msgtype: String,
        payloadtype: String,
    },
    #[error("invalid rpcMsg.PayloadType: {0:?}")]
    UnknownPayloadType(String),
    #[error("invalid {payloadtype} payload: {reason}")]
    Fields { payloadtype: String, reason: String },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl RpcMsg {
    /// Builds and signs an envelope for `request`. Unsigned types still get a signature; a
    /// server ignores it for them.
    pub fn sign(request: &Request, key: &PrivateKey) -> RpcMsg {
        let payload = BASE64.encode(request.to_json());
        RpcMsg {
            signature: key.sign(&payload),
            payloadtype: request.msgtype().to_string(),
            payload,
        }
    }

    /// Builds an envelope without a signature (`versionmsg`, `getserverinfomsg`).
    pub fn unsigned(request: &Request) -> RpcMsg {
        RpcMsg {
            signature: String::new(),
            payloadtype: request.msgtype().to_string(),
            payload: BASE64.encode(request.to_json()),
        }
    }

    /// Recovers the signer's id from the signature over the Base64 payload text.
    pub fn caller_id(&self) -> Result<String, EnvelopeError> {
        Ok(crypto::recover_id(&self.payload, &self.signature)?)
    }

    /// Decodes and type-checks the payload.
    pub fn request(&self) -> Result<Request, EnvelopeError> {
        let json = decode_base64_text(&self.payload)?;
        Request::decode(&self.payloadtype, &json)
    }
}

impl RpcReply {
    /// A successful reply carrying `json` for `payloadtype`.
    pub fn ok(payloadtype: &str, json: &str) -> RpcReply {
        RpcReply {
            payloadtype: payloadtype.to_string(),
            payload: BASE64.encode(json),
            error: false,
        }
    }

    /// An error reply with the ColonyOS failure payload.
    pub fn failure(status: u16, message: &str) -> RpcReply {
        let failure = Failure {
            status: i32::from(status),
            message: message.to_string(),
        };
        let json = serde_json::to_string(&failure).expect("a failure always serializes");
        RpcReply {
            payloadtype: "error".to_string(),
            payload: BASE64.encode(json),
            error: true,
        }
    }

    /// The decoded payload JSON text.
    pub fn payload_json(&self) -> Result<String, EnvelopeError> {
        decode_base64_text(&self.payload)
    }

    /// The failure carried by an error reply, if this is one.
    pub fn failure_payload(&self) -> Option<Failure> {
        if !self.error {
            return None;
        }
        let json = self.payload_json().ok()?;
        serde_json::from_str(&json).ok()
    }
}

fn decode_base64_text(payload: &str) -> Result<String, EnvelopeError> {
    let bytes = BASE64
        .decode(payload)
        .map_err(|e| EnvelopeError::Base64(e.to_string()))?;
    String::from_utf8(bytes).map_err(|_| EnvelopeError::Utf8)
}

#[cfg(test)]
mod tests;
