//! Mesh membership and peer service: admits peers by certificate, answers their requests
//! (raft RPCs, forwarded writes, joins), joins an existing mesh on first start, and runs the
//! leader's autopilot.
//!
//! ```text
//!   net::Event::Request --serve_peers--> trust check (certificate, or token for a join)
//!       --> RaftNode::{serve_rpc, serve_forward, add_learner}; refusals are logged
//!   first start with a token --join--> PeerRequest::Join to an admission node, which signs
//!       the certificate and relays the join to the leader
//!   leader, every autopilot_ms --autopilot::run--> promote, replace or remove members
//! ```

pub mod autopilot;
pub mod status;

use crate::clock::Clock;
use crate::config::MeshConfig;
use crate::guard::{Guard, Side};
use crate::net;
use crate::raft::{node_id_of, RaftNode};
use crate::shutdown::Signal;
use crate::trust::{self, RootKey, Verifier};
use proto::mesh::{Certificate, NodeInfo, PeerRequest, PeerResponse};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tracing::Instrument as _;

/// Peer requests handled at once; more wait in the network's bounded queue.
const PEER_REQUESTS_MAX: usize = 256;
/// Pause between rounds of join attempts over the join peers.
const JOIN_RETRY: Duration = Duration::from_millis(250);
const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// What the peer service needs to decide who may do what.
pub struct Admission {
    pub verifier: Verifier,
    /// Present on admission nodes: they sign certificates for joiners with valid tokens.
    pub root: Option<RootKey>,
    pub clock: Arc<dyn Clock>,
}

/// Serves peers' requests until `stop` or the network ends. Cancel-safe.
pub async fn serve_peers(
    raft: RaftNode,
    admission: Arc<Admission>,
    fleet: Arc<status::Fleet>,
    guard: Arc<Guard>,
    mut events: mpsc::Receiver<net::Event>,
    stop: Signal,
) {
    let permits = Arc::new(Semaphore::new(PEER_REQUESTS_MAX));
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = &mut stopped => return,
        };
        let (peer, source, certificate, request, responder) = match event {
            Some(net::Event::Request {
                peer,
                source,
                certificate,
                request,
                responder,
            }) => (peer, source, certificate, request, responder),
            Some(net::Event::Status { source, data }) => {
                fleet.heard(&raft, &source, &data);
                continue;
            }
            None => return,
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (raft, admission, guard) = (raft.clone(), admission.clone(), guard.clone());
        let fleet = fleet.clone();
        let span = tracing::info_span!("peer", %peer);
        let serve_one = async move {
            let now = crate::clock::monotonic();
            let banned = source.and_then(|ip| guard.banned(Side::P2p, ip, now).err());
            let response = match banned {
                Some(refusal) => PeerResponse::Refused {
                    reason: refusal.to_string(),
                },
                None => {
                    let serving = serve(
                        &raft,
                        &admission,
                        &fleet,
                        &peer,
                        certificate.as_ref(),
                        request,
                    );
                    // A requester that is gone (its pipe ended) needs no answer: a parked
                    // long-poll of its executor must not be handed work it cannot hear of.
                    let (response, failed_auth) = tokio::select! {
                        served = serving => served,
                        () = responder.closed() => return,
                    };
                    if let (true, Some(ip)) = (failed_auth, source) {
                        guard.failed(Side::P2p, ip, crate::clock::monotonic());
                    }
                    response
                }
            };
            responder.respond(response).await;
            drop(permit);
        };
        tokio::spawn(serve_one.instrument(span));
    }
}

/// Answers one peer request; the flag says whether it was a failed authentication (a refused
/// certificate, a join with a bad token), which counts toward a ban of its source.
async fn serve(
    raft: &RaftNode,
    admission: &Admission,
    fleet: &status::Fleet,
    peer: &str,
    certificate: Option<&Certificate>,
    request: PeerRequest,
) -> (PeerResponse, bool) {
    let certified = admission.verifier.check(peer, certificate);
    let response = match (request, certified) {
        (PeerRequest::Raft { kind, body }, Ok(())) => raft.serve_rpc(kind, &body).await,
        (PeerRequest::Forward(command), Ok(())) => raft.serve_forward(command).await,
        (PeerRequest::ForwardBatch(commands), Ok(())) => raft.serve_forward_batch(commands).await,
        (PeerRequest::AwaitAssign(wait), Ok(())) => {
            // Parked polls propose `AssignFor`: only once every member applies it.
            let waited = match fleet.mesh_applies(raft, crate::state::LEVEL_ASSIGN_FOR) {
                true => raft.serve_await_assign(wait).await,
                false => proto::mesh::AssignWaited::Unsupported,
            };
            PeerResponse::AssignWaited(waited)
        }
        (PeerRequest::ReadIndex, Ok(())) => raft.serve_read_index().await,
        (
            PeerRequest::Join {
                node_id,
                info,
                token,
            },
            certified,
        ) => {
            tracing::info!(%peer, node_id, name = %info.name, "join request");
            return join_request(
                raft,
                admission,
                peer,
                certified.is_ok(),
                node_id,
                info,
                token,
            )
            .await;
        }
        (_, Err(refusal)) => {
            tracing::warn!(%peer, "refused peer request: {refusal}");
            let reason = format!("refused: {refusal}");
            return (PeerResponse::Refused { reason }, true);
        }
    };
    (response, false)
}

/// A join: a certified sender (a member relaying, or a node rejoining) is trusted; anyone
/// else needs a valid token and an admission node to sign its certificate.
async fn join_request(
    raft: &RaftNode,
    admission: &Admission,
    peer: &str,
    certified: bool,
    node_id: u64,
    info: NodeInfo,
    token: Option<String>,
) -> (PeerResponse, bool) {
    let identity = admission.verifier.identity();
    let mut issued = None;
    if !certified {
        let now = admission.clock.now_nanos() / NANOS_PER_SECOND;
        let checked = match token.as_deref() {
            Some(token) => trust::check_token(identity, token, now).map_err(|e| e.to_string()),
            None => Err("no certificate and no join token".to_string()),
        };
        if let Err(reason) = checked {
            tracing::warn!(%peer, "refused join: {reason}");
            let reason = format!("join refused: {reason}");
            return (PeerResponse::Refused { reason }, true);
        }
        if info.peer_id != peer {
            let reason = "join refused: info names another peer".into();
            return (PeerResponse::Refused { reason }, true);
        }
        let Some(root) = &admission.root else {
            let reason = "this node holds no mesh root key; join through an admission node";
            let reason = reason.into();
            return (PeerResponse::Refused { reason }, false);
        };
        issued = Some(root.certify(&identity.mesh_id, peer, now));
    }
    let response = match raft.add_learner(node_id, info).await {
        Ok(()) => PeerResponse::Joined {
            certificate: issued,
        },
        Err(reason) => PeerResponse::Refused {
            reason: format!("join failed: {reason}"),
        },
    };
    (response, false)
}

/// Splits `/ip4/.../tcp/7001/p2p/<peer id>` into the peer id and the address before it.
fn split_peer_addr(addr: &str) -> Option<(String, String)> {
    let (address, peer) = addr.rsplit_once("/p2p/")?;
    Some((peer.to_string(), address.to_string()))
}

/// Asks the join peers, in turn, to add this node, until one accepts or `timeout` passes.
/// Returns the certificate the admission node issued (none when already certified).
pub async fn join(
    net: &net::Client,
    config: &MeshConfig,
    me: &NodeInfo,
    token: Option<String>,
    timeout: Duration,
) -> anyhow::Result<Option<Certificate>> {
    let node_id = node_id_of(&me.peer_id);
    let attempts = async {
        loop {
            for addr in &config.join {
                let Some((peer, address)) = split_peer_addr(addr) else {
                    continue;
                };
                let request = PeerRequest::Join {
                    node_id,
                    info: me.clone(),
                    token: token.clone(),
                };
                match net.request(&peer, &[address], request).await {
                    Ok(PeerResponse::Joined { certificate }) => return anyhow::Ok(certificate),
                    Ok(PeerResponse::Refused { reason }) if reason.starts_with("join refused") => {
                        anyhow::bail!("{addr}: {reason}");
                    }
                    Ok(other) => tracing::info!(%addr, "join not accepted yet: {other:?}"),
                    Err(error) => tracing::info!(%addr, "join peer unreachable: {error}"),
                }
            }
            tokio::time::sleep(JOIN_RETRY).await;
        }
    };
    tokio::time::timeout(timeout, attempts)
        .await
        .map_err(|_| anyhow::anyhow!("no join peer accepted this node within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    #[test]
    fn join_addresses_split_into_peer_and_address() {
        let (peer, address) =
            super::split_peer_addr("/ip4/127.0.0.1/tcp/7001/p2p/12D3KooW").unwrap();
        assert_eq!(
            (peer.as_str(), address.as_str()),
            ("12D3KooW", "/ip4/127.0.0.1/tcp/7001")
        );
        assert!(super::split_peer_addr("/ip4/127.0.0.1/tcp/7001").is_none());
    }
}
