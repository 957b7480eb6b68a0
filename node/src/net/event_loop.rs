//! The task that owns the libp2p `Swarm`: it turns client commands into swarm calls and
//! swarm events into replies and node events. Nothing else touches the swarm.

use super::{Command, Error, Event, Responder, MESSAGE_BYTES_MAX};
use libp2p::futures::StreamExt as _;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, identify, kad, mdns, ping, Multiaddr, PeerId, StreamProtocol, Swarm};
use proto::mesh::{PeerEnvelope, PeerRequest, PeerResponse};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// The node's libp2p behaviours.
#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    /// The mesh protocol, version 1 (`MESH_PROTOCOL`), for peers of older builds.
    pub(super) rpc: request_response::cbor::Behaviour<PeerEnvelope, PeerResponse>,
    /// Version 2 (`MESH_PROTOCOL_V2`): streams for the pipes (`net::pipe`).
    pub(super) pipes: libp2p_stream::Behaviour,
    pub(super) identify: identify::Behaviour,
    pub(super) ping: ping::Behaviour,
    pub(super) gossip: gossipsub::Behaviour,
    pub(super) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(super) mdns: Toggle<mdns::tokio::Behaviour>,
}

type Codec = request_response::cbor::codec::Codec<PeerEnvelope, PeerResponse>;

/// Builds the behaviours for `key`'s node.
pub(super) fn behaviour(
    key: &libp2p::identity::Keypair,
    codec: Codec,
    protocols: [(StreamProtocol, request_response::ProtocolSupport); 1],
    rr_config: request_response::Config,
    mdns_enabled: bool,
) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let peer_id = key.public().to_peer_id();
    let gossip_config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(std::time::Duration::from_secs(1))
        .validation_mode(gossipsub::ValidationMode::Strict)
        .max_transmit_size(super::GOSSIP_BYTES_MAX)
        .build()?;
    let gossip = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip_config,
    )?;
    let kad_config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
    let mut kad =
        kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
    kad.set_mode(Some(kad::Mode::Server));
    let mdns = match mdns_enabled {
        true => Some(mdns::tokio::Behaviour::new(
            mdns::Config::default(),
            peer_id,
        )?),
        false => None,
    };
    Ok(Behaviour {
        rpc: request_response::Behaviour::with_codec(codec, protocols, rr_config),
        pipes: libp2p_stream::Behaviour::new(),
        // No address cache in identify: it would hand every address a peer reports (its
        // loopback ones too) to every dial, and a dial that reaches this node itself over
        // loopback first fails as a whole on the peer id. `on_swarm_event` adds the
        // `reachable` ones instead.
        identify: identify::Behaviour::new(
            identify::Config::new(proto::mesh::MESH_PROTOCOL.to_string(), key.public())
                .with_cache_size(0),
        ),
        ping: ping::Behaviour::new(
            ping::Config::new()
                .with_interval(super::PING_INTERVAL)
                .with_timeout(super::PING_TIMEOUT),
        ),
        gossip,
        kad,
        mdns: Toggle::from(mdns),
    })
}

/// Kademlia protocol name (peer routing inside one mesh).
const KAD_PROTOCOL: &str = "/colonymesh/kad/1";

type Reply = oneshot::Sender<Result<PeerResponse, Error>>;

/// What the event loop learns and the rest of `net` reads.
pub(super) struct Shared {
    /// Peers that announced version 2 of the mesh protocol (by identify).
    pub(super) v2_peers: Arc<RwLock<HashSet<PeerId>>>,
    /// The IP address of each connected peer (the source of its requests on pipes).
    pub(super) peer_ips: Arc<RwLock<HashMap<PeerId, IpAddr>>>,
}

/// Owns the swarm; run it with `run` on its own task.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    /// Commands from `Client`s (bounded).
    commands: mpsc::Receiver<Command>,
    /// A sender for `Responder`s handed out with inbound requests.
    responder_commands: mpsc::Sender<Command>,
    /// Inbound requests to the node (bounded; the loop waits when it is full).
    events: mpsc::Sender<Event>,
    /// Replies awaiting responses to outbound requests.
    pending: HashMap<OutboundRequestId, Reply>,
    /// What the loop learns for the pipes and `Client`s.
    shared: Shared,
    /// When each peer last answered (responses and pings); one entry per peer ever seen.
    last_seen: HashMap<PeerId, Instant>,
    /// The remote IP address of each open connection (the source of its requests).
    remote_ips: HashMap<ConnectionId, IpAddr>,
}

impl EventLoop {
    pub(super) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        responder_commands: mpsc::Sender<Command>,
        events: mpsc::Sender<Event>,
        shared: Shared,
    ) -> EventLoop {
        EventLoop {
            swarm,
            commands,
            responder_commands,
            events,
            pending: HashMap::new(),
            shared,
            last_seen: HashMap::new(),
            remote_ips: HashMap::new(),
        }
    }

    /// Runs until `stop` completes or every client is gone. Cancel-safe.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event).await,
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                () = &mut stop => return,
            }
        }
    }

    /// Hands an event to the node without ever blocking the loop (a blocked loop would stop
    /// draining the responses the node is trying to send: a deadlock). When the queue is
    /// full, a request is refused at once and a status message dropped.
    fn deliver(&mut self, event: Event) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Event::Request {
                peer, responder, ..
            })) => {
                tracing::warn!(%peer, "refused a peer request: the node's queue is full");
                let reason = "node busy: too many peer requests queued".to_string();
                let refusal = PeerResponse::Refused { reason };
                if let super::ResponderTo::Rpc { channel, .. } = responder.to {
                    self.respond(channel, refusal);
                }
            }
            Err(_) => {}
        }
    }

    fn respond(
        &mut self,
        channel: request_response::ResponseChannel<PeerResponse>,
        response: PeerResponse,
    ) {
        // Fails only if the peer is gone; it then sees the stream closed.
        let _ = self
            .swarm
            .behaviour_mut()
            .rpc
            .send_response(channel, response);
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Request {
                peer,
                addrs,
                request,
                reply,
            } => {
                let size = approximate_size(&request);
                if size > MESSAGE_BYTES_MAX as usize {
                    let _ = reply.send(Err(Error::TooLarge { size }));
                    return;
                }
                for addr in reachable(addrs) {
                    self.swarm.add_peer_address(peer, addr);
                }
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, *request);
                self.pending.insert(id, reply);
            }
            Command::Respond { channel, response } => self.respond(channel, response),
            Command::AddAddresses { peer, addrs } => {
                for addr in reachable(addrs) {
                    self.swarm.add_peer_address(peer, addr);
                }
            }
            Command::Disconnect { peer } => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::Publish { data } => {
                let topic = gossipsub::IdentTopic::new(proto::mesh::STATUS_TOPIC);
                // Fails when no peer subscribes yet (a lone node); the next period retries.
                if let Err(error) = self.swarm.behaviour_mut().gossip.publish(topic, data) {
                    tracing::debug!("status not published: {error}");
                }
            }
            Command::LastSeen { reply } => {
                let seen = self
                    .last_seen
                    .iter()
                    .map(|(p, t)| (p.to_string(), *t))
                    .collect();
                let _ = reply.send(seen);
            }
            Command::ListenAddrs { reply } => {
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                let _ = reply.send(addrs);
            }
        }
    }

    async fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(event)) => self.on_rpc(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let v2 = StreamProtocol::new(proto::mesh::MESH_PROTOCOL_V2);
                let mut v2_peers = self.shared.v2_peers.write().expect("v2 peers lock");
                match info.protocols.contains(&v2) {
                    true => v2_peers.insert(peer_id),
                    false => v2_peers.remove(&peer_id),
                };
                drop(v2_peers);
                for addr in reachable(info.listen_addrs) {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, addr.clone());
                    self.swarm.add_peer_address(peer_id, addr);
                }
            }
            other => self.on_other_event(other),
        }
    }

    fn on_rpc(&mut self, event: request_response::Event<PeerEnvelope, PeerResponse>) {
        use request_response::{Event as Rr, Message};
        match event {
            Rr::Message {
                peer,
                connection_id,
                message:
                    Message::Request {
                        request, channel, ..
                    },
            } => {
                let responder = Responder::rpc(channel, self.responder_commands.clone());
                let event = Event::Request {
                    peer: peer.to_string(),
                    source: self.remote_ips.get(&connection_id).copied(),
                    certificate: request.certificate,
                    request: request.request,
                    responder,
                };
                self.deliver(event);
            }
            Rr::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            Rr::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if matches!(error, request_response::OutboundFailure::Timeout) {
                    // A request that timed out on a live-looking connection means the link
                    // is dead without the kernel knowing (a cut cable resets nothing):
                    // drop the peer's connections so the next request dials afresh.
                    tracing::info!(%peer, "request timed out; reconnecting to the peer");
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                if let Some(reply) = self.pending.remove(&request_id) {
                    let (peer, reason) = (peer.to_string(), error.to_string());
                    let error = match error {
                        request_response::OutboundFailure::DialFailure
                        | request_response::OutboundFailure::UnsupportedProtocols => {
                            Error::NotSent { peer, reason }
                        }
                        _ => Error::Unreachable { peer, reason },
                    };
                    let _ = reply.send(Err(error));
                }
            }
            Rr::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "inbound request failed: {error}");
            }
            Rr::ResponseSent { .. } => {}
        }
    }

    fn on_other_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer_id, addr) in found {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, addr.clone());
                    self.swarm.add_peer_address(peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Message {
                message,
                ..
            })) => {
                if let Some(source) = message.source {
                    let event = Event::Status {
                        source: source.to_string(),
                        data: message.data,
                    };
                    self.deliver(event);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(_),
                ..
            })) => {
                self.last_seen.insert(peer, crate::clock::monotonic());
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                tracing::info!(%peer, "dial failed: {error}");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                if let Some(ip) = ip_of(endpoint.get_remote_address()) {
                    self.remote_ips.insert(connection_id, ip);
                    let mut peer_ips = self.shared.peer_ips.write().expect("peer ips lock");
                    peer_ips.insert(peer_id, ip);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                endpoint,
                cause,
                num_established,
                ..
            } => {
                self.remote_ips.remove(&connection_id);
                if num_established == 0 {
                    let mut peer_ips = self.shared.peer_ips.write().expect("peer ips lock");
                    peer_ips.remove(&peer_id);
                }
                let address = endpoint.get_remote_address();
                tracing::debug!(
                    peer = %peer_id,
                    %address,
                    num_established,
                    "connection closed: {cause:?}"
                );
            }
            _ => {}
        }
    }
}

/// A cheap upper-bound-ish estimate of the encoded size: the raft body dominates.
/// The addresses of a peer worth dialing: a peer listening on every interface also reports
/// its loopback addresses, which from another host (or container) reach the dialer itself,
/// costing a handshake per attempt that then fails on the peer id. Loopback addresses are
/// kept only when the peer has no other (a mesh on one machine's loopback).
fn reachable(addrs: Vec<Multiaddr>) -> Vec<Multiaddr> {
    let loopback = |addr: &Multiaddr| {
        addr.iter().next().is_some_and(|part| match part {
            libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_loopback(),
            libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_loopback(),
            _ => false,
        })
    };
    if addrs.iter().all(loopback) {
        return addrs;
    }
    addrs.into_iter().filter(|addr| !loopback(addr)).collect()
}

/// The IP address a multiaddr starts with, if any.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        libp2p::multiaddr::Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        libp2p::multiaddr::Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

fn approximate_size(envelope: &PeerEnvelope) -> usize {
    match &envelope.request {
        PeerRequest::Raft { body, .. } => body.len() + 64,
        PeerRequest::Forward(_)
        | PeerRequest::ForwardBatch(_)
        | PeerRequest::AwaitAssign(_)
        | PeerRequest::Join { .. }
        | PeerRequest::ReadIndex => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_dialed_only_without_others() {
        let parse =
            |list: &[&str]| -> Vec<Multiaddr> { list.iter().map(|a| a.parse().unwrap()).collect() };
        let container = parse(&[
            "/ip4/127.0.0.1/tcp/7001",
            "/ip4/172.29.77.11/tcp/7001",
            "/ip6/::1/tcp/7001",
        ]);
        assert_eq!(reachable(container), parse(&["/ip4/172.29.77.11/tcp/7001"]));
        let one_host = parse(&["/ip4/127.0.0.1/tcp/7001", "/ip4/127.0.0.1/udp/7002/quic-v1"]);
        assert_eq!(reachable(one_host.clone()), one_host);
    }
}
