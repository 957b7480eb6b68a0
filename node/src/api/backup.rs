//! `GET /backup`: streams a consistent backup of this node's state (`node::backup`) to the
//! server owner. The request carries `Colonymesh-Backup-Time` (Unix seconds) and
//! `Colonymesh-Signature`, the owner's signature of `backup:<time>`; a time more than
//! `SIGNATURE_SKEW` away is refused, which bounds replays.

use super::ApiState;
use crate::guard::Side;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The headers of a backup request.
pub const TIME_HEADER: &str = "colonymesh-backup-time";
pub const SIGNATURE_HEADER: &str = "colonymesh-signature";
/// How far the signed time may be from the node's clock, in seconds.
const SIGNATURE_SKEW: i64 = 300;
/// Chunks of the backup in flight to the client; the export waits when they are all out.
const CHUNKS_QUEUED: usize = 16;

/// What the owner signs for a backup at `time` (Unix seconds).
pub fn signed_text(time: i64) -> String {
    format!("backup:{time}")
}

pub(super) async fn backup(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(time), Some(signature)) = (header(TIME_HEADER), header(SIGNATURE_HEADER)) else {
        let message = format!("a backup needs the {TIME_HEADER} and {SIGNATURE_HEADER} headers");
        return super::failure_response(StatusCode::BAD_REQUEST, &message);
    };
    let Ok(time) = time.parse::<i64>() else {
        return super::failure_response(StatusCode::BAD_REQUEST, "the backup time is not a number");
    };
    let now = state.clock.now_nanos() / 1_000_000_000;
    if (now - time).abs() > SIGNATURE_SKEW {
        let message = format!("the backup time is more than {SIGNATURE_SKEW} s from the node's");
        return super::failure_response(StatusCode::FORBIDDEN, &message);
    }
    let owner = crate::state::auth::server_id(&state.store.view())
        .ok()
        .flatten();
    let caller = proto::crypto::recover_id(&signed_text(time), signature).ok();
    if owner.is_none() || caller != owner {
        state
            .guard
            .failed(Side::Api, peer.ip(), crate::clock::monotonic());
        return super::failure_response(
            StatusCode::FORBIDDEN,
            "Access denied, only the server owner may take a backup",
        );
    }
    let (chunks, body) = mpsc::channel::<std::io::Result<Vec<u8>>>(CHUNKS_QUEUED);
    let (store, node, created) = (
        state.store.clone(),
        state.node_name.clone(),
        state.clock.now_nanos(),
    );
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, Sender(chunks.clone()));
        let written = crate::backup::write(&store, &node, created, &mut out)
            .map_err(|e| e.to_string())
            .and_then(|_| out.flush().map_err(|e| e.to_string()));
        match written {
            Ok(()) => tracing::info!("backup sent"),
            Err(error) => {
                tracing::warn!("backup failed: {error}");
                // The client sees the body end in an error, never a short file that looks whole.
                let _ = chunks.blocking_send(Err(std::io::Error::other(error)));
            }
        }
    });
    let stream = futures::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|chunk| (chunk, body))
    });
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Hands what the export writes to the response body; fails once the client is gone.
struct Sender(mpsc::Sender<std::io::Result<Vec<u8>>>);

impl Write for Sender {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(bytes.to_vec()))
            .map_err(|_| std::io::Error::other("the client went away"))?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
