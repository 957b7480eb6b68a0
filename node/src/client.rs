//! A ColonyOS API client over HTTP: signs requests with a private key, posts them to `/api`
//! and decodes replies. The CLI and the tests talk to nodes only through it, like any user.

use crate::tls::{self, ClientTls};
use futures::{SinkExt, StreamExt};
use proto::{PrivateKey, Request, RpcMsg, RpcReply};
use serde::de::DeserializeOwned;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Longest a single request may take (assign long-polls add their own timeout to it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
    /// The node answered with the ColonyOS error envelope.
    #[error("{message} (status {status})")]
    Api { status: i32, message: String },
    #[error("cannot decode reply: {0}")]
    Decode(String),
    #[error("TLS: {0}")]
    Tls(String),
}

/// An error with its causes (reqwest's own message hides why a connection failed, e.g. an
/// untrusted certificate).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = inner.source();
    }
    text
}

/// The host a client on the same machine uses for an API bound to `addr`: loopback when the
/// API listens on every address.
pub fn local_host(addr: std::net::SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        ip => ip.to_string(),
    }
}

/// A client for one node.
#[derive(Clone)]
pub struct Client {
    /// Connection-pooling HTTP client; cheap to clone.
    http: reqwest::Client,
    url: String,
    /// The TLS configuration of HTTPS and WSS connections (none: plain HTTP).
    tls: Option<tls::ClientConfig>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("url", &self.url).finish()
    }
}

impl Client {
    /// A client for `http://host:port/api`, or `https://` trusting the system's roots.
    pub fn new(host: &str, port: u16, tls: bool) -> Client {
        let trust = tls.then(ClientTls::default);
        Client::with_tls(host, port, trust.as_ref())
            .expect("the default TLS configuration needs no file and always builds")
    }

    /// A client for `http://host:port/api`, or `https://` trusting what `tls` says.
    pub fn with_tls(host: &str, port: u16, tls: Option<&ClientTls>) -> Result<Client, ClientError> {
        let config = tls
            .map(tls::client_config)
            .transpose()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let scheme = if config.is_some() { "https" } else { "http" };
        let http = match &config {
            Some(config) => reqwest::Client::builder()
                .use_preconfigured_tls(config.as_ref().clone())
                .build()
                .map_err(|e| ClientError::Tls(e.to_string()))?,
            None => reqwest::Client::new(),
        };
        Ok(Client {
            http,
            url: format!("{scheme}://{host}:{port}/api"),
            tls: config,
        })
    }

    /// A client for this machine's node listening on `api`: over TLS when the node serves
    /// it, without verifying its certificate (the connection never leaves the machine, and
    /// the certificate need not name a loopback address).
    pub fn local(api: std::net::SocketAddr, tls: bool) -> Client {
        let trust = tls.then_some(ClientTls {
            ca_file: None,
            skip_verify: true,
        });
        Client::with_tls(&local_host(api), api.port(), trust.as_ref())
            .expect("a TLS configuration without files always builds")
    }

    /// Sends `request` signed by `key` (unsigned when `None`) and returns the reply JSON.
    /// `extra_wait` extends the request timeout (assign long-polls).
    pub async fn call_raw(
        &self,
        request: &Request,
        key: Option<&PrivateKey>,
        extra_wait: Duration,
    ) -> Result<String, ClientError> {
        let msg = match key {
            Some(key) => RpcMsg::sign(request, key),
            None => RpcMsg::unsigned(request),
        };
        let transport = |e: reqwest::Error| ClientError::Transport {
            url: self.url.clone(),
            reason: with_causes(&e),
        };
        let response = self
            .http
            .post(&self.url)
            .timeout(REQUEST_TIMEOUT + extra_wait)
            .json(&msg)
            .send()
            .await
            .map_err(transport)?;
        let body = response.bytes().await.map_err(transport)?;
        decode_reply(&body)
    }

    /// Sends `request` signed by `key` and decodes the reply as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        request: &Request,
        key: &PrivateKey,
    ) -> Result<T, ClientError> {
        let json = self.call_raw(request, Some(key), Duration::ZERO).await?;
        serde_json::from_str(&json).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `GET /ready`: whether the node is caught up, and its answer (the reason when not).
    pub async fn ready(&self) -> Result<(bool, String), ClientError> {
        let url = self.url.replace("/api", "/ready");
        let response = self
            .http
            .get(&url)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| ClientError::Transport {
                url: url.clone(),
                reason: with_causes(&e),
            })?;
        let ready = response.status().is_success();
        let text = response.text().await.unwrap_or_default();
        Ok((ready, text.trim().to_string()))
    }

    /// Downloads a backup of the node's state into `out` (`GET /backup`, signed by the server
    /// owner's `key` for Unix time `now_seconds`); returns the bytes written. A transfer that
    /// fails midway is an error, never a short success.
    pub async fn backup(
        &self,
        key: &PrivateKey,
        now_seconds: i64,
        out: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<u64, ClientError> {
        use crate::api::backup::{signed_text, SIGNATURE_HEADER, TIME_HEADER};
        use tokio::io::AsyncWriteExt as _;
        let url = self.url.replace("/api", "/backup");
        let transport = |e: &dyn std::error::Error| ClientError::Transport {
            url: url.clone(),
            reason: with_causes(e),
        };
        let mut response = self
            .http
            .get(&url)
            .header(TIME_HEADER, now_seconds.to_string())
            .header(SIGNATURE_HEADER, key.sign(&signed_text(now_seconds)))
            .send()
            .await
            .map_err(|e| transport(&e))?;
        if !response.status().is_success() {
            let status = i32::from(response.status().as_u16());
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<RpcReply>(&text)
                .ok()
                .and_then(|reply| reply.failure_payload())
                .map_or(text, |failure| failure.message);
            return Err(ClientError::Api { status, message });
        }
        let mut written = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e))? {
            out.write_all(&chunk).await.map_err(|e| transport(&e))?;
            written += chunk.len() as u64;
        }
        out.flush().await.map_err(|e| transport(&e))?;
        Ok(written)
    }

    /// Sends one of the unsigned requests (`versionmsg`, `getserverinfomsg`).
    pub async fn call_unsigned<T: DeserializeOwned>(
        &self,
        request: &Request,
    ) -> Result<T, ClientError> {
        let json = self.call_raw(request, None, Duration::ZERO).await?;
        serde_json::from_str(&json).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Opens a realtime subscription (`GET /pubsub` over WebSocket) with `request` signed by
    /// `key`; read its frames with `Frames::next`.
    pub async fn subscribe(
        &self,
        request: &Request,
        key: &PrivateKey,
    ) -> Result<Frames, ClientError> {
        let url = self
            .url
            .replacen("http", "ws", 1)
            .replace("/api", "/pubsub");
        let transport = |e: tokio_tungstenite::tungstenite::Error| ClientError::Transport {
            url: url.clone(),
            reason: e.to_string(),
        };
        let connector = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        let connect =
            tokio_tungstenite::connect_async_tls_with_config(&url, None, false, connector);
        let (mut socket, _) = tokio::time::timeout(REQUEST_TIMEOUT, connect)
            .await
            .map_err(|_| ClientError::Transport {
                url: url.clone(),
                reason: "connect timed out".into(),
            })?
            .map_err(transport)?;
        let text =
            serde_json::to_string(&RpcMsg::sign(request, key)).expect("envelopes always serialize");
        socket
            .send(WsMessage::Text(text.into()))
            .await
            .map_err(transport)?;
        Ok(Frames { socket })
    }

    /// Like `call` for assign: waits up to `timeout_seconds` longer for the long-poll.
    pub async fn assign(
        &self,
        request: &Request,
        key: &PrivateKey,
        timeout_seconds: u64,
    ) -> Result<proto::Process, ClientError> {
        let json = self
            .call_raw(request, Some(key), Duration::from_secs(timeout_seconds))
            .await?;
        serde_json::from_str(&json).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

/// The frames of a subscription, in order.
pub struct Frames {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Frames {
    /// The next frame's payload JSON; `None` once the server closed the subscription.
    /// An error frame becomes `ClientError::Api`.
    pub async fn next(&mut self) -> Option<Result<String, ClientError>> {
        loop {
            let message = match self.socket.next().await? {
                Ok(message) => message,
                Err(e) => {
                    return Some(Err(ClientError::Transport {
                        url: "/pubsub".into(),
                        reason: e.to_string(),
                    }))
                }
            };
            let text = match message {
                WsMessage::Text(text) => text.to_string(),
                WsMessage::Close(_) => return None,
                _ => continue,
            };
            return Some(decode_reply(text.as_bytes()));
        }
    }
}

/// The payload JSON of a reply envelope, or the failure it carries.
fn decode_reply(body: &[u8]) -> Result<String, ClientError> {
    let reply: RpcReply = serde_json::from_slice(body)
        .map_err(|e| ClientError::Decode(format!("reply envelope: {e}")))?;
    if let Some(failure) = reply.failure_payload() {
        return Err(ClientError::Api {
            status: failure.status,
            message: failure.message,
        });
    }
    if reply.error {
        return Err(ClientError::Decode(
            "error reply without a failure payload".into(),
        ));
    }
    reply
        .payload_json()
        .map_err(|e| ClientError::Decode(e.to_string()))
}
