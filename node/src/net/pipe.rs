//! Pipes: version 2 of the mesh protocol (`MESH_PROTOCOL_V2`), one long-lived libp2p stream
//! per peer and direction that carries every request to that peer and its response, each
//! framed with an id so that many are in flight at once and answered in any order.
//!
//! Version 1 (request-response) opens a stream per request: a negotiation, a handler round
//! trip through the swarm task and two timers on libp2p's timer thread each time. A pipe pays
//! that once; a request is one frame written by the caller's task and one read back.
//!
//! ```text
//!   Client::request --Pipes::request--> Pipe: pending[id] = reply; frame --> writer task
//!        --stream--> peer: reader --Event::Request{responder: Responder::Pipe}--> node
//!        node --respond--> peer's writer task --stream--> our reader task --> pending[id]
//! ```
//!
//! A frame is `len: u32 | kind: u8 | id: u64 | CBOR body`, big-endian, `len` counting what
//! follows it, at most `MESSAGE_BYTES_MAX`. A request's body is a `PeerEnvelope`, a
//! response's a `PeerResponse`. A pipe that fails (stream error, unknown frame, a request
//! timing out) is dropped with everything pending on it; the next request opens a new one.

use super::{Command, Error, Event, Responder, MESSAGE_BYTES_MAX, REQUEST_TIMEOUT};
use futures::{AsyncReadExt as _, AsyncWriteExt as _, StreamExt as _};
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use proto::mesh::{PeerEnvelope, PeerResponse};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

/// Frames queued for one pipe's writer; a full queue makes senders wait.
const FRAMES_QUEUED_MAX: usize = 1024;
/// Requests in flight on one pipe; more are refused as not sent.
const PENDING_PER_PIPE_MAX: usize = 16_384;
/// Inbound pipes served at once (every member opens one to us; the rest are dropped).
const INBOUND_PIPES_MAX: usize = 256;
/// Bytes of a frame before its body: length, kind, id.
const HEADER_BYTES: usize = 4 + 1 + 8;

const KIND_REQUEST: u8 = 0;
const KIND_RESPONSE: u8 = 1;

pub(super) fn protocol() -> StreamProtocol {
    StreamProtocol::new(proto::mesh::MESH_PROTOCOL_V2)
}

/// Encodes one frame.
fn frame<T: serde::Serialize>(kind: u8, id: u64, body: &T) -> Result<Vec<u8>, String> {
    let mut buffer = vec![0u8; HEADER_BYTES];
    buffer = cbor4ii::serde::to_vec(buffer, body).map_err(|e| format!("encode frame: {e}"))?;
    let len = buffer.len() - 4;
    if len as u64 > MESSAGE_BYTES_MAX {
        return Err(format!(
            "frame of {len} bytes exceeds the mesh message limit of {MESSAGE_BYTES_MAX}"
        ));
    }
    buffer[..4].copy_from_slice(&(len as u32).to_be_bytes());
    buffer[4] = kind;
    buffer[5..HEADER_BYTES].copy_from_slice(&id.to_be_bytes());
    Ok(buffer)
}

/// Reads one frame: `None` at a clean end of the stream.
async fn read_frame<R: futures::AsyncRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<(u8, u64, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len < HEADER_BYTES - 4 || len as u64 > MESSAGE_BYTES_MAX {
        let message = format!("frame length {len} out of bounds");
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            message,
        ));
    }
    let mut rest = vec![0u8; len];
    reader.read_exact(&mut rest).await?;
    let id = u64::from_be_bytes(rest[1..9].try_into().expect("8 bytes"));
    let body = rest.split_off(9);
    Ok(Some((rest[0], id, body)))
}

/// Writes queued frames to `writer` until the queue closes or a write fails.
async fn write_frames<W: futures::AsyncWrite + Unpin>(
    mut writer: W,
    mut frames: mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    while let Some(frame) = frames.recv().await {
        writer.write_all(&frame).await?;
        // Everything queued meanwhile goes out before the flush.
        while let Ok(frame) = frames.try_recv() {
            writer.write_all(&frame).await?;
        }
        writer.flush().await?;
    }
    writer.close().await
}

/// One outbound pipe.
struct Pipe {
    /// Frames for the writer task.
    frames: mpsc::Sender<Vec<u8>>,
    /// Replies awaiting responses, by request id.
    pending: Mutex<HashMap<u64, oneshot::Sender<PeerResponse>>>,
    next_id: AtomicU64,
    /// False once the stream failed: the pipe is replaced on the next request.
    alive: AtomicBool,
}

impl Pipe {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<PeerResponse>>> {
        // Whole insertions and removals only: a panic elsewhere cannot tear the map.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the pipe dead and drops every pending reply (their callers see it closed).
    fn fail(&self) {
        self.alive.store(false, Ordering::SeqCst);
        self.pending().clear();
    }
}

/// The pipe to one peer, if open; the lock serializes opening it.
type PipeSlot = Arc<tokio::sync::Mutex<Option<Arc<Pipe>>>>;

/// The outbound pipes of a node; shared by its `Client`s.
pub(super) struct Pipes {
    /// Opens streams (libp2p-stream's handle, outside the swarm task).
    control: libp2p_stream::Control,
    /// The pipe to each peer, opened on first use; the lock serializes opening.
    peers: Mutex<HashMap<PeerId, PipeSlot>>,
    /// To the event loop: addresses to dial, peers to disconnect.
    commands: mpsc::Sender<Command>,
}

impl Pipes {
    pub(super) fn new(control: libp2p_stream::Control, commands: mpsc::Sender<Command>) -> Pipes {
        Pipes {
            control,
            peers: Mutex::default(),
            commands,
        }
    }

    fn slot(&self, peer: PeerId) -> PipeSlot {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.entry(peer).or_default().clone()
    }

    /// The live pipe to `peer`, opening one (dialing `addrs` if needed) when there is none.
    async fn pipe(&self, peer: PeerId, addrs: Vec<Multiaddr>) -> Result<Arc<Pipe>, Error> {
        let slot = self.slot(peer);
        let mut slot = slot.lock().await;
        if let Some(pipe) = slot.as_ref().filter(|p| p.alive.load(Ordering::SeqCst)) {
            return Ok(pipe.clone());
        }
        let not_sent = |reason: String| Error::NotSent {
            peer: peer.to_string(),
            reason,
        };
        let add = Command::AddAddresses { peer, addrs };
        self.commands.send(add).await.map_err(|_| Error::Stopped)?;
        let mut control = self.control.clone();
        let open = control.open_stream(peer, protocol());
        let stream = match tokio::time::timeout(REQUEST_TIMEOUT, open).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(not_sent(error.to_string())),
            Err(_) => return Err(not_sent("opening a stream timed out".into())),
        };
        let (reader, writer) = stream.split();
        let (frames, queued) = mpsc::channel(FRAMES_QUEUED_MAX);
        let pipe = Arc::new(Pipe {
            frames,
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            alive: AtomicBool::new(true),
        });
        let writing = pipe.clone();
        tokio::spawn(async move {
            if let Err(error) = write_frames(writer, queued).await {
                tracing::debug!(%peer, "pipe write failed: {error}");
            }
            writing.fail();
        });
        let reading = pipe.clone();
        tokio::spawn(async move {
            if let Err(error) = read_responses(reader, &reading).await {
                tracing::debug!(%peer, "pipe read failed: {error}");
            }
            reading.fail();
        });
        *slot = Some(pipe.clone());
        Ok(pipe)
    }

    /// Sends `envelope` to `peer` on its pipe and waits (at most `REQUEST_TIMEOUT`) for the
    /// response. Cancel-safe: a cancelled call drops its reply.
    pub(super) async fn request(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        envelope: &PeerEnvelope,
    ) -> Result<PeerResponse, Error> {
        let pipe = self.pipe(peer, addrs).await?;
        let unreachable = |reason: &str| Error::Unreachable {
            peer: peer.to_string(),
            reason: reason.to_string(),
        };
        let id = pipe.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = frame(KIND_REQUEST, id, envelope).map_err(|_| Error::TooLarge {
            size: MESSAGE_BYTES_MAX as usize + 1,
        })?;
        let (reply, response) = oneshot::channel();
        {
            let mut pending = pipe.pending();
            if pending.len() >= PENDING_PER_PIPE_MAX {
                return Err(Error::NotSent {
                    peer: peer.to_string(),
                    reason: format!("{PENDING_PER_PIPE_MAX} requests in flight"),
                });
            }
            pending.insert(id, reply);
        }
        // Removes the reply however this call ends (answered, failed, timed out, cancelled).
        let _forget = Forget { pipe: &pipe, id };
        if pipe.frames.send(frame).await.is_err() {
            return Err(Error::NotSent {
                peer: peer.to_string(),
                reason: "pipe closed".into(),
            });
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, response).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(unreachable("pipe closed before the response")),
            Err(_) => {
                // A request that times out on a live-looking stream means the link is dead
                // without the kernel knowing: drop the pipe and the peer's connections.
                tracing::info!(%peer, "request timed out; reconnecting to the peer");
                pipe.fail();
                let _ = self.commands.try_send(Command::Disconnect { peer });
                Err(unreachable("request timed out"))
            }
        }
    }
}

/// Drops a pending reply when its request's call ends.
struct Forget<'a> {
    pipe: &'a Pipe,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.pipe.pending().remove(&self.id);
    }
}

/// Hands each response frame to its pending reply, until the stream ends or fails.
async fn read_responses<R: futures::AsyncRead + Unpin>(
    mut reader: R,
    pipe: &Pipe,
) -> std::io::Result<()> {
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    while let Some((kind, id, body)) = read_frame(&mut reader).await? {
        if kind != KIND_RESPONSE {
            return Err(invalid(format!("frame kind {kind} on an outbound pipe")));
        }
        let response: PeerResponse = cbor4ii::serde::from_slice(&body)
            .map_err(|e| invalid(format!("undecodable response: {e}")))?;
        let reply = pipe.pending().remove(&id);
        if let Some(reply) = reply {
            let _ = reply.send(response);
        }
    }
    Ok(())
}

/// Answers requests that arrive on inbound pipes, handing each to the node as an
/// `Event::Request` (refused at once when the node's queue is full). Ends when the swarm stops.
pub(super) async fn serve(
    mut incoming: libp2p_stream::IncomingStreams,
    events: mpsc::Sender<Event>,
    peer_ips: Arc<RwLock<HashMap<PeerId, IpAddr>>>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    while let Some((peer, stream)) = incoming.next().await {
        if open.load(Ordering::SeqCst) >= INBOUND_PIPES_MAX {
            tracing::warn!(%peer, "refused a pipe: {INBOUND_PIPES_MAX} open");
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let (events, peer_ips, open) = (events.clone(), peer_ips.clone(), open.clone());
        tokio::spawn(async move {
            if let Err(error) = serve_pipe(peer, stream, events, peer_ips).await {
                tracing::debug!(%peer, "inbound pipe failed: {error}");
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

async fn serve_pipe(
    peer: PeerId,
    stream: libp2p::swarm::Stream,
    events: mpsc::Sender<Event>,
    peer_ips: Arc<RwLock<HashMap<PeerId, IpAddr>>>,
) -> std::io::Result<()> {
    let (mut reader, writer) = stream.split();
    let (frames, queued) = mpsc::channel(FRAMES_QUEUED_MAX);
    let writing = tokio::spawn(write_frames(writer, queued));
    // Tells the responders of this pipe's requests that nobody will read their answers.
    let (gone, gone_rx) = tokio::sync::watch::channel(false);
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    let outcome = async {
        while let Some((kind, id, body)) = read_frame(&mut reader).await? {
            if kind != KIND_REQUEST {
                return Err(invalid(format!("frame kind {kind} on an inbound pipe")));
            }
            let envelope: PeerEnvelope = cbor4ii::serde::from_slice(&body)
                .map_err(|e| invalid(format!("undecodable request: {e}")))?;
            let source = peer_ips.read().expect("peer ips lock").get(&peer).copied();
            let event = Event::Request {
                peer: peer.to_string(),
                source,
                certificate: envelope.certificate,
                request: envelope.request,
                responder: Responder::pipe(id, frames.clone(), gone_rx.clone()),
            };
            if let Err(mpsc::error::TrySendError::Full(Event::Request { responder, .. })) =
                events.try_send(event)
            {
                tracing::warn!(%peer, "refused a peer request: the node's queue is full");
                let reason = "node busy: too many peer requests queued".to_string();
                responder.respond(PeerResponse::Refused { reason }).await;
            }
        }
        Ok(())
    }
    .await;
    let _ = gone.send(true);
    // The writer ends once every responder of this pipe is gone.
    drop(frames);
    let _ = writing.await;
    outcome
}

/// The frame answering request `id` with `response` (a refusal naming the problem when the
/// response cannot be encoded within the limit).
pub(super) fn response_frame(id: u64, response: &PeerResponse) -> Vec<u8> {
    frame(KIND_RESPONSE, id, response).unwrap_or_else(|reason| {
        let refusal = PeerResponse::Refused { reason };
        frame(KIND_RESPONSE, id, &refusal).expect("a refusal always encodes within the limit")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bounds_are_checked() {
        let response = PeerResponse::ReadIndex { index: 42 };
        let bytes = response_frame(7, &response);
        let mut reader = futures::io::Cursor::new(bytes);
        let read = futures::executor::block_on(read_frame(&mut reader)).unwrap();
        let (kind, id, body) = read.expect("one frame");
        assert_eq!((kind, id), (KIND_RESPONSE, 7));
        let decoded: PeerResponse = cbor4ii::serde::from_slice(&body).unwrap();
        assert_eq!(decoded, response);
        let end = futures::executor::block_on(read_frame(&mut reader)).unwrap();
        assert!(end.is_none(), "a clean end after the last frame");
        let mut huge = futures::io::Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let refused = futures::executor::block_on(read_frame(&mut huge));
        assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
    }
}
