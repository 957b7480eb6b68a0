//! Mesh membership and peer service: answers peers' requests (raft RPCs, forwarded writes,
//! joins), joins an existing mesh on first start, and runs the leader's autopilot.
//!
//! ```text
//!   net::Event::Request --serve_peers--> RaftNode::{serve_rpc, serve_forward, serve_join}
//!   first start with mesh.join --join--> PeerRequest::Join to a join peer (relayed to leader)
//!   leader, every autopilot_ms --autopilot--> promote caught-up learners to voters
//! ```

use crate::config::MeshConfig;
use crate::net;
use crate::raft::{node_id_of, RaftNode};
use crate::shutdown::Signal;
use proto::mesh::{NodeInfo, PeerRequest, PeerResponse};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// Peer requests handled at once; more wait in the network's bounded queue.
const PEER_REQUESTS_MAX: usize = 256;
/// Pause between rounds of join attempts over the join peers.
const JOIN_RETRY: Duration = Duration::from_millis(250);

/// Serves peers' requests until `stop` or the network ends. Cancel-safe.
pub async fn serve_peers(raft: RaftNode, mut events: mpsc::Receiver<net::Event>, stop: Signal) {
    let permits = Arc::new(Semaphore::new(PEER_REQUESTS_MAX));
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = &mut stopped => return,
        };
        let Some(net::Event::Request {
            peer,
            request,
            responder,
        }) = event
        else {
            return;
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let raft = raft.clone();
        tokio::spawn(async move {
            let response = match request {
                PeerRequest::Raft { kind, body } => raft.serve_rpc(kind, &body).await,
                PeerRequest::Forward(command) => raft.serve_forward(command).await,
                PeerRequest::Join { node_id, info } => {
                    tracing::info!(%peer, node_id, name = %info.name, "join request");
                    raft.serve_join(node_id, info).await
                }
            };
            responder.respond(response).await;
            drop(permit);
        });
    }
}

/// Splits `/ip4/.../tcp/7001/p2p/<peer id>` into the peer id and the address before it.
fn split_peer_addr(addr: &str) -> Option<(String, String)> {
    let (address, peer) = addr.rsplit_once("/p2p/")?;
    Some((peer.to_string(), address.to_string()))
}

/// Asks the join peers, in turn, to add this node, until one says it joined or `timeout`.
pub async fn join(
    net: &net::Client,
    config: &MeshConfig,
    me: &NodeInfo,
    timeout: Duration,
) -> anyhow::Result<()> {
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
                };
                match net.request(&peer, &[address], request).await {
                    Ok(PeerResponse::Joined) => return,
                    Ok(other) => tracing::info!(%addr, "join not accepted yet: {other:?}"),
                    Err(error) => tracing::info!(%addr, "join peer unreachable: {error}"),
                }
            }
            tokio::time::sleep(JOIN_RETRY).await;
        }
    };
    tokio::time::timeout(timeout, attempts)
        .await
        .map_err(|_| anyhow::anyhow!("no join peer accepted this node within {timeout:?}"))
}

/// On the leader, promotes caught-up learners until the voter target is met. Cancel-safe.
pub async fn autopilot(raft: RaftNode, config: MeshConfig, stop: Signal) {
    let mut interval = tokio::time::interval(Duration::from_millis(config.autopilot_ms));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = &mut stopped => return,
        }
        if let Some(node) = raft
            .autopilot_step(config.voters_target, config.learner_lag_max)
            .await
        {
            tracing::info!(node, "promoted learner to voter");
        }
    }
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
