//! The libp2p network: the one place that imports `libp2p`. One `EventLoop` task owns the
//! `Swarm`; the rest of the node talks to it through a cloneable `Client` (commands with reply
//! channels) and receives inbound requests as `Event`s.
//!
//! ```text
//!   raft::network / api forwarding --Client::request--> Command::Request --> EventLoop
//!        EventLoop --swarm (TCP+Noise+Yamux, QUIC)--> peer;  response --> oneshot reply
//!   peer request --> EventLoop --Event::Request{request, responder}--> mesh service
//!        mesh service --Responder::respond--> Command::Respond --> EventLoop --> peer
//! ```

mod event_loop;
mod pipe;

use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use proto::mesh::{Certificate, PeerEnvelope, PeerRequest, PeerResponse, MESH_PROTOCOL};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub use event_loop::EventLoop;

/// Largest encoded request or response on the mesh protocol. Raft batches and snapshots are
/// kept below it by the raft module; the codec would otherwise truncate silently.
pub const MESSAGE_BYTES_MAX: u64 = 32 << 20;
/// How long a request may wait for its response; a request that times out also drops the
/// peer's connections (see the event loop), so a dead link is redialed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Commands queued to the event loop before callers wait.
const COMMANDS_QUEUED_MAX: usize = 1024;
/// Inbound requests queued to the node before the event loop waits.
const EVENTS_QUEUED_MAX: usize = 1024;
/// Concurrent request streams per connection.
const STREAMS_PER_CONNECTION_MAX: usize = 256;
/// How often connected peers are pinged (liveness for the autopilot).
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// A ping unanswered this long marks the connection dead; it is closed and redialed.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// A QUIC connection that hears nothing (keep-alives included) this long is closed.
const QUIC_IDLE_TIMEOUT_MS: u32 = 3_000;
/// Idle connections are kept this long (raft heartbeats keep used ones alive).
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request may have been delivered (timeout, connection lost mid-request).
    #[error("peer {peer} unreachable: {reason}")]
    Unreachable { peer: String, reason: String },
    /// The request was certainly not delivered (the peer could not be dialed).
    #[error("peer {peer} could not be dialed: {reason}")]
    NotSent { peer: String, reason: String },
    #[error("request of {size} bytes exceeds the mesh message limit of {MESSAGE_BYTES_MAX}")]
    TooLarge { size: usize },
    #[error("network stopped")]
    Stopped,
    #[error("invalid address {0:?}")]
    Address(String),
}

/// The network's settings.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Multiaddrs to listen on, e.g. `/ip4/127.0.0.1/tcp/0` and `/ip4/127.0.0.1/udp/0/quic-v1`.
    pub listen: Vec<String>,
    /// Discover peers on the local network with mDNS (dev and LAN setups).
    pub mdns: bool,
}

/// Largest gossip message (node status is a few hundred bytes).
pub const GOSSIP_BYTES_MAX: usize = 64 << 10;

/// Commands from `Client`s to the event loop.
enum Command {
    Request {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: Box<PeerEnvelope>,
        reply: oneshot::Sender<Result<PeerResponse, Error>>,
    },
    Respond {
        channel: request_response::ResponseChannel<PeerResponse>,
        response: PeerResponse,
    },
    /// Addresses to dial `peer` at (before a pipe is opened to it).
    AddAddresses {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    },
    /// Drops `peer`'s connections (a request to it timed out on a dead link).
    Disconnect {
        peer: PeerId,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Publish {
        data: Vec<u8>,
    },
    LastSeen {
        reply: oneshot::Sender<std::collections::HashMap<String, std::time::Instant>>,
    },
}

/// Something the network tells the node.
// Each event is moved once through a bounded channel; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// A peer (authenticated by Noise or TLS as `peer`) sent a request with the certificate
    /// it presents; answer it through `responder`.
    Request {
        peer: String,
        /// The IP address the request came from (none for a transport without one).
        source: Option<std::net::IpAddr>,
        certificate: Option<Certificate>,
        request: PeerRequest,
        responder: Responder,
    },
    /// A status message arrived by gossip; `source` is its (signature-checked) publisher.
    Status { source: String, data: Vec<u8> },
}

/// Answers one inbound request (dropping it answers nothing; the peer sees a failure).
pub struct Responder {
    to: ResponderTo,
}

/// Where a response goes: back through the swarm (version 1) or onto the request's pipe.
enum ResponderTo {
    Rpc {
        channel: request_response::ResponseChannel<PeerResponse>,
        commands: mpsc::Sender<Command>,
    },
    Pipe {
        id: u64,
        frames: mpsc::Sender<Vec<u8>>,
        /// Becomes true when the pipe's stream has ended (the requester is gone).
        gone: tokio::sync::watch::Receiver<bool>,
    },
}

impl Responder {
    fn rpc(
        channel: request_response::ResponseChannel<PeerResponse>,
        commands: mpsc::Sender<Command>,
    ) -> Responder {
        Responder {
            to: ResponderTo::Rpc { channel, commands },
        }
    }

    fn pipe(
        id: u64,
        frames: mpsc::Sender<Vec<u8>>,
        gone: tokio::sync::watch::Receiver<bool>,
    ) -> Responder {
        Responder {
            to: ResponderTo::Pipe { id, frames, gone },
        }
    }

    /// Completes when nobody can receive the response any more (the request's pipe ended);
    /// never for a version 1 request, whose end the swarm handles. Cancel-safe.
    pub async fn closed(&self) {
        match &self.to {
            ResponderTo::Pipe { gone, .. } => {
                let mut gone = gone.clone();
                // An error means the pipe's task is gone too.
                let _ = gone.wait_for(|gone| *gone).await;
            }
            ResponderTo::Rpc { .. } => std::future::pending().await,
        }
    }

    /// Sends the response. Cancel-safe.
    pub async fn respond(self, response: PeerResponse) {
        match self.to {
            ResponderTo::Rpc { channel, commands } => {
                let command = Command::Respond { channel, response };
                // The loop has stopped when this fails; the peer then sees a closed stream.
                let _ = commands.send(command).await;
            }
            ResponderTo::Pipe { id, frames, .. } => {
                // Fails when the pipe has closed; the peer then sees it closed.
                let _ = frames.send(pipe::response_frame(id, &response)).await;
            }
        }
    }
}

/// A handle to the network; cheap to clone.
#[derive(Clone)]
pub struct Client {
    /// Bounded queue to the event loop (`COMMANDS_QUEUED_MAX`).
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    /// This node's mesh certificate, attached to every request once it has one.
    certificate: Arc<RwLock<Option<Certificate>>>,
    /// Peers that announced `MESH_PROTOCOL_V2` (written by the event loop from identify).
    v2_peers: Arc<RwLock<HashSet<PeerId>>>,
    /// The pipes to those peers.
    pipes: Arc<pipe::Pipes>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer_id", &self.local_peer_id)
            .finish()
    }
}

impl Client {
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// True when `peer` announced version 2 of the mesh protocol: requests to it travel on a
    /// pipe, and it takes the version 2 requests (`ForwardBatch`, `AwaitAssign`). False for
    /// peers not identified yet.
    pub fn speaks_v2(&self, peer: &str) -> bool {
        let Ok(peer) = peer.parse::<PeerId>() else {
            return false;
        };
        self.v2_peer(&peer)
    }

    fn v2_peer(&self, peer: &PeerId) -> bool {
        self.v2_peers.read().expect("v2 peers lock").contains(peer)
    }

    /// Sends `request` to `peer` (dialing `addrs` if not connected) and waits for the answer.
    /// Cancel-safe: a cancelled call drops its reply.
    pub async fn request(
        &self,
        peer: &str,
        addrs: &[String],
        request: PeerRequest,
    ) -> Result<PeerResponse, Error> {
        let peer_id: PeerId = peer.parse().map_err(|_| Error::Address(peer.to_string()))?;
        let addrs = addrs
            .iter()
            .map(|a| {
                a.parse::<Multiaddr>()
                    .map_err(|_| Error::Address(a.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let certificate = self.certificate.read().expect("certificate lock").clone();
        let envelope = PeerEnvelope {
            certificate,
            request,
        };
        // Snapshot chunks (megabytes) travel on streams of their own, so that they never hold
        // up the small requests behind them on the pipe.
        let bulk = matches!(
            envelope.request,
            PeerRequest::Raft {
                kind: proto::mesh::RaftRpcKind::InstallSnapshot,
                ..
            }
        );
        if self.v2_peer(&peer_id) && !bulk {
            return self.pipes.request(peer_id, addrs, &envelope).await;
        }
        if needs_v2(&envelope.request) {
            return Err(Error::NotSent {
                peer: peer.to_string(),
                reason: "the peer does not speak version 2 of the mesh protocol".into(),
            });
        }
        let request = Box::new(envelope);
        let (reply, response) = oneshot::channel();
        let command = Command::Request {
            peer: peer_id,
            addrs,
            request,
            reply,
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| Error::Stopped)?;
        response.await.map_err(|_| Error::Stopped)?
    }

    /// Publishes `data` on the status topic. Cancel-safe.
    pub async fn publish_status(&self, data: Vec<u8>) -> Result<(), Error> {
        if data.len() > GOSSIP_BYTES_MAX {
            return Err(Error::TooLarge { size: data.len() });
        }
        self.commands
            .send(Command::Publish { data })
            .await
            .map_err(|_| Error::Stopped)
    }

    /// When each peer last answered a request or a ping (monotonic time).
    pub async fn last_seen(
        &self,
    ) -> Result<std::collections::HashMap<String, std::time::Instant>, Error> {
        let (reply, seen) = oneshot::channel();
        self.commands
            .send(Command::LastSeen { reply })
            .await
            .map_err(|_| Error::Stopped)?;
        seen.await.map_err(|_| Error::Stopped)
    }

    /// Sets the certificate sent with every request from now on.
    pub fn set_certificate(&self, certificate: Certificate) {
        *self.certificate.write().expect("certificate lock") = Some(certificate);
    }

    /// The addresses the node listens on (with the ports the OS chose).
    pub async fn listen_addrs(&self) -> Result<Vec<String>, Error> {
        let (reply, addrs) = oneshot::channel();
        self.commands
            .send(Command::ListenAddrs { reply })
            .await
            .map_err(|_| Error::Stopped)?;
        let addrs = addrs.await.map_err(|_| Error::Stopped)?;
        Ok(addrs.iter().map(|a| a.to_string()).collect())
    }
}

/// True for the requests only version 2 of the mesh protocol carries.
fn needs_v2(request: &PeerRequest) -> bool {
    match request {
        PeerRequest::ForwardBatch(_) | PeerRequest::AwaitAssign(_) => true,
        PeerRequest::Raft { .. }
        | PeerRequest::Forward(_)
        | PeerRequest::Join { .. }
        | PeerRequest::ReadIndex => false,
    }
}

/// The libp2p keypair of a node, stored in `path` (created on first use).
pub fn load_or_create_keypair(path: &std::path::Path) -> anyhow::Result<Keypair> {
    use anyhow::Context as _;
    match std::fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes)
            .with_context(|| format!("decode node key {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = Keypair::generate_ed25519();
            let bytes = keypair.to_protobuf_encoding().context("encode node key")?;
            crate::host::write_private(path, &bytes)?;
            Ok(keypair)
        }
        Err(e) => Err(e).with_context(|| format!("read node key {}", path.display())),
    }
}

/// The peer id of a keypair, as text.
pub fn peer_id_of(keypair: &Keypair) -> String {
    keypair.public().to_peer_id().to_string()
}

/// Builds the swarm and returns the client, the inbound events and the loop to spawn.
pub fn new(
    keypair: Keypair,
    config: &NetConfig,
) -> anyhow::Result<(Client, mpsc::Receiver<Event>, EventLoop)> {
    let protocols = [(StreamProtocol::new(MESH_PROTOCOL), ProtocolSupport::Full)];
    let rr_config = request_response::Config::default()
        .with_request_timeout(REQUEST_TIMEOUT)
        .with_max_concurrent_streams(STREAMS_PER_CONNECTION_MAX);
    let codec = request_response::cbor::codec::Codec::<PeerEnvelope, PeerResponse>::default()
        .set_request_size_maximum(MESSAGE_BYTES_MAX)
        .set_response_size_maximum(MESSAGE_BYTES_MAX);
    let local_peer_id = keypair.public().to_peer_id();
    let mdns = config.mdns;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )?
        .with_quic_config(|mut quic| {
            // A peer killed without closing its connection is noticed within seconds.
            quic.max_idle_timeout = QUIC_IDLE_TIMEOUT_MS;
            quic.keep_alive_interval = PING_INTERVAL;
            quic
        })
        .with_behaviour(|key| event_loop::behaviour(key, codec, protocols, rr_config, mdns))?
        .with_swarm_config(|c| {
            // Every mesh stream names one protocol, which every member speaks: the dialer
            // sends its data right behind the protocol name instead of waiting a round trip
            // for the listener to confirm it (multistream-select's "lazy" mode).
            c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
                .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
        })
        .build();
    let topic = libp2p::gossipsub::IdentTopic::new(proto::mesh::STATUS_TOPIC);
    swarm.behaviour_mut().gossip.subscribe(&topic)?;
    for addr in &config.listen {
        let addr: Multiaddr = addr.parse().map_err(|_| Error::Address(addr.clone()))?;
        swarm.listen_on(addr)?;
    }
    let (commands_tx, commands_rx) = mpsc::channel(COMMANDS_QUEUED_MAX);
    let (events_tx, events_rx) = mpsc::channel(EVENTS_QUEUED_MAX);
    let v2_peers = Arc::<RwLock<HashSet<PeerId>>>::default();
    let mut control = swarm.behaviour().pipes.new_control();
    let incoming = control
        .accept(pipe::protocol())
        .expect("the pipe protocol is registered once");
    let peer_ips = Arc::<RwLock<HashMap<PeerId, std::net::IpAddr>>>::default();
    tokio::spawn(pipe::serve(incoming, events_tx.clone(), peer_ips.clone()));
    let client = Client {
        commands: commands_tx.clone(),
        local_peer_id,
        certificate: Arc::default(),
        v2_peers: v2_peers.clone(),
        pipes: Arc::new(pipe::Pipes::new(control, commands_tx.clone())),
    };
    let shared = event_loop::Shared { v2_peers, peer_ips };
    let event_loop = EventLoop::new(swarm, commands_rx, commands_tx, events_tx, shared);
    Ok((client, events_rx, event_loop))
}
