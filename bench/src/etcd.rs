//! The etcd peer: durable 256-byte puts from `clients` concurrent clients through etcd's JSON
//! gateway (`POST /v3/kv/put`, system `etcd-3`; clients spread over the members, the same way
//! the Colonymesh `writes` scenario submits processes) and through its native gRPC API
//! (`etcdserverpb.KV/Put` over HTTP/2 with our own minimal unary client, system `etcd-3-grpc`;
//! clients share the connections of its fastest layout, [`GRPC_LAYOUT`]).

use crate::stats::{Latency, Record};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::{BufMut as _, Bytes, BytesMut};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Size of each value, as in the mission's etcd figures.
const VALUE_BYTES: usize = 256;

/// How the gRPC clients reach etcd: `connections` HTTP/2 connections (0: one per client),
/// all to the leader or spread over the members. Client `i` sends on connection
/// `i % connections`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub(crate) connections: usize,
    pub(crate) to_leader: bool,
}

impl Layout {
    /// Where the connections go, as `--grpc-to` names it.
    pub(crate) const fn to(self) -> &'static str {
        if self.to_leader {
            "leader"
        } else {
            "members"
        }
    }
}

/// The layout of the committed bench: one connection to the leader, shared by all clients.
/// Measured on the 2-core bench machine (3 fresh members on loopback, 5 s per figure, puts/s,
/// the range over three or more interleaved rounds; other builds ran on it now and then):
///
/// | layout                     | 1 client    | 32 clients  | 64 clients   |
/// |----------------------------|-------------|-------------|--------------|
/// | one connection per client  | 935-1,003   | 4,350-5,814 | 5,831-7,975  |
/// | 6 spread over the members  | 977-1,078   | 4,789-6,623 | 6,196-9,605  |
/// | 3, one per member          | 964-1,108   | 5,117-7,181 | 6,698-9,942  |
/// | 1 to a follower            | 882-1,095   | 4,286-7,240 | 7,574-9,792  |
/// | 1 to the leader            | 1,184-1,280 | 8,108-8,459 | 9,977-11,496 |
/// | 2 to the leader            | 1,137-1,250 | 7,887-8,504 | 7,670-11,859 |
/// | 4 to the leader            | 1,183-1,200 | 7,557-8,224 | 8,537-11,369 |
///
/// On 2 cores etcd is CPU-bound: fewer connections let its gRPC server batch more per read
/// and write, and the leader proposes without forwarding (a follower forwards every put).
/// One connection to the leader is the fastest and steadiest; the leader is found once, before
/// the clients start, through the JSON gateway's status (not measured).
pub(crate) const GRPC_LAYOUT: Layout = Layout {
    connections: 1,
    to_leader: true,
};

/// Puts through the JSON gateway for `seconds` from `clients` clients; client `i` uses
/// `endpoints[i % len]`.
pub(crate) async fn writes_json(
    endpoints: &[String],
    clients: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let value = BASE64.encode(vec![b'x'; VALUE_BYTES]);
    let endpoints: Arc<[String]> = endpoints.into();
    let (samples, elapsed, _) = drive(clients, seconds, {
        let endpoints = endpoints.clone();
        move |i, seq| {
            let url = format!("{}/v3/kv/put", endpoints[i % endpoints.len()]);
            let key = BASE64.encode(format!("bench/{i}/{seq}"));
            let body = serde_json::json!({ "key": key, "value": value });
            let sent = http.post(url).json(&body).send();
            async move { matches!(sent.await, Ok(response) if response.status().is_success()) }
        }
    })
    .await;
    anyhow::ensure!(
        !samples.is_empty(),
        "no etcd put succeeded against {endpoints:?}"
    );
    let mut record = Record::new("etcd-3", "writes", clients);
    record.rate = samples.len() as f64 / elapsed;
    record.latency = Latency::of(samples);
    record.emit()
}

/// Puts through gRPC for `seconds` from `clients` clients over the connections of `layout`.
pub(crate) async fn writes_grpc(
    endpoints: &[String],
    clients: usize,
    seconds: u64,
    layout: Layout,
) -> anyhow::Result<()> {
    let targets = if layout.to_leader {
        vec![leader(endpoints).await?]
    } else {
        endpoints.to_vec()
    };
    let count = match layout.connections {
        0 => clients,
        n => n,
    };
    let mut channels = Vec::with_capacity(count);
    for j in 0..count {
        channels.push(grpc::Channel::connect(&targets[j % targets.len()]).await?);
    }
    let channels: Arc<[grpc::Channel]> = channels.into();
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    let (samples, elapsed, failed) = drive(clients, seconds, move |i, seq| {
        let channel = channels[i % channels.len()].clone();
        let message = grpc::put_request(format!("grpc/{i}/{seq}").as_bytes(), &value);
        async move { channel.unary(grpc::KV_PUT, message).await.is_ok() }
    })
    .await;
    if samples.is_empty() {
        // Say why: one more put, its error.
        let channel = grpc::Channel::connect(&endpoints[0]).await?;
        let message = grpc::put_request(b"grpc/probe", &Bytes::from_static(b"x"));
        channel.unary(grpc::KV_PUT, message).await?;
        anyhow::bail!("no etcd gRPC put succeeded against {endpoints:?}");
    }
    let mut record = Record::new("etcd-3-grpc", "writes", clients);
    record.rate = samples.len() as f64 / elapsed;
    record.latency = Latency::of(samples);
    let connections = match layout.connections {
        0 => "one per client".into(),
        n => serde_json::Value::from(n),
    };
    record.extra.insert("connections".into(), connections);
    record.extra.insert("to".into(), layout.to().into());
    if failed > 0 {
        record.extra.insert("failed".into(), failed.into());
    }
    record.emit()
}

/// The endpoint of the member that leads, asked through the JSON gateway
/// (`/v3/maintenance/status`: the member whose id is the leader's).
async fn leader(endpoints: &[String]) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    let id = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    for endpoint in endpoints {
        let status: serde_json::Value = http
            .post(format!("{endpoint}/v3/maintenance/status"))
            .json(&serde_json::json!({}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if id(&status["header"]["member_id"]) == id(&status["leader"]) {
            return Ok(endpoint.clone());
        }
    }
    anyhow::bail!("no etcd member of {endpoints:?} says it leads")
}

/// Runs `clients` tasks for `seconds`, each looping `put(client, seq)` (true: acknowledged).
/// Returns the latencies of the acknowledged puts, the elapsed seconds and the failures.
async fn drive<F, Fut>(clients: usize, seconds: u64, put: F) -> (Vec<Duration>, f64, usize)
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (put, stop, samples, failed) =
            (put.clone(), stop.clone(), samples.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let start = Instant::now();
                if put(i, seq).await {
                    local.push(start.elapsed());
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            samples.lock().expect("lock").extend(local);
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let samples = std::mem::take(&mut *samples.lock().expect("lock"));
    (samples, elapsed, failed.load(Ordering::Relaxed))
}

/// A minimal gRPC unary client over cleartext HTTP/2 (what etcd serves on its client URLs
/// without TLS): length-prefixed messages, status from the `grpc-status` trailer.
mod grpc {
    use super::*;
    use anyhow::Context as _;

    /// Path of etcd's `KV.Put`.
    pub(super) const KV_PUT: &str = "/etcdserverpb.KV/Put";

    /// One HTTP/2 connection; clones share it (each call is a stream of its own).
    #[derive(Clone)]
    pub(super) struct Channel {
        send: h2::client::SendRequest<Bytes>,
        /// `http://host:port`, the scheme and authority of every request.
        base: String,
    }

    impl Channel {
        /// Connects to `endpoint` (`http://host:port`) with HTTP/2 prior knowledge.
        pub(super) async fn connect(endpoint: &str) -> anyhow::Result<Channel> {
            let address = endpoint
                .strip_prefix("http://")
                .with_context(|| format!("endpoint {endpoint:?}: only http:// is supported"))?
                .trim_end_matches('/');
            let tcp = tokio::net::TcpStream::connect(address)
                .await
                .with_context(|| format!("connect to {address}"))?;
            tcp.set_nodelay(true)?;
            let (send, connection) = h2::client::handshake(tcp)
                .await
                .with_context(|| format!("HTTP/2 handshake with {address}"))?;
            let peer = address.to_string();
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    eprintln!("etcd gRPC connection to {peer} ended: {error}");
                }
            });
            Ok(Channel {
                send,
                base: format!("http://{address}"),
            })
        }

        /// Sends one framed `message` to `path`; Ok when the call ends with grpc-status 0.
        /// The response message is read and dropped.
        pub(super) async fn unary(&self, path: &str, message: Bytes) -> anyhow::Result<()> {
            let request = http::Request::post(format!("{}{path}", self.base))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())?;
            let mut send = self.send.clone().ready().await?;
            let (response, mut stream) = send.send_request(request, false)?;
            stream.send_data(frame(&message), true)?;
            let (head, mut body) = response.await?.into_parts();
            anyhow::ensure!(head.status == http::StatusCode::OK, "HTTP {}", head.status);
            // A trailers-only response carries the status in its headers.
            if let Some(status) = head.headers.get("grpc-status") {
                return check(status, &head.headers);
            }
            while let Some(chunk) = body.data().await {
                let chunk = chunk?;
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            let trailers = body.trailers().await?.context("no trailers")?;
            check(
                trailers.get("grpc-status").context("no grpc-status")?,
                &trailers,
            )
        }
    }

    fn check(status: &http::HeaderValue, fields: &http::HeaderMap) -> anyhow::Result<()> {
        if status.as_bytes() == b"0" {
            return Ok(());
        }
        let message = fields
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .unwrap_or("");
        anyhow::bail!("grpc-status {status:?}: {message}")
    }

    /// A gRPC message frame: not compressed (0), big-endian length, the message.
    fn frame(message: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(5 + message.len());
        out.put_u8(0);
        out.put_u32(u32::try_from(message.len()).expect("message under 4 GiB"));
        out.put_slice(message);
        out.freeze()
    }

    /// `etcdserverpb.PutRequest { key = 1, value = 2 }`, both length-delimited bytes fields.
    pub(super) fn put_request(key: &[u8], value: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(key.len() + value.len() + 12);
        for (field, bytes) in [(1u8, key), (2, value)] {
            out.put_u8(field << 3 | 2);
            varint(&mut out, bytes.len() as u64);
            out.put_slice(bytes);
        }
        out.freeze()
    }

    fn varint(out: &mut BytesMut, mut value: u64) {
        while value >= 0x80 {
            out.put_u8((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        out.put_u8(value as u8);
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn put_request_encodes_key_and_value() {
            let value = vec![b'x'; 256];
            let encoded = put_request(b"k", &value);
            assert_eq!(&encoded[..3], &[0x0a, 1, b'k']);
            assert_eq!(&encoded[3..6], &[0x12, 0x80, 0x02]);
            assert_eq!(&encoded[6..], &value[..]);
            let framed = frame(&encoded);
            assert_eq!(&framed[..5], &[0, 0, 0, 1, 6]);
        }
    }
}
