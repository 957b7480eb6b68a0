//! openraft's network over the libp2p mesh: each RPC is JSON in a `PeerRequest::Raft`, sent
//! with `net::Client` to the target's peer id and addresses, bounded by openraft's hard TTL.
//! The receiving side is `RaftNode::serve_rpc`.

use super::{NodeId, TypeConfig};
use crate::net;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use proto::mesh::{NodeInfo, PeerRequest, PeerResponse, RaftRpcKind};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Creates connections to raft peers over the mesh.
pub(super) struct MeshNetwork {
    pub(super) client: net::Client,
}

impl RaftNetworkFactory<TypeConfig> for MeshNetwork {
    type Network = MeshPeer;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> MeshPeer {
        MeshPeer {
            client: self.client.clone(),
            target,
            node: node.clone(),
        }
    }
}

/// One raft peer.
pub(super) struct MeshPeer {
    client: net::Client,
    target: NodeId,
    node: NodeInfo,
}

/// Largest raft RPC body sent; half the mesh message limit leaves room for the envelope.
const RAFT_BODY_BYTES_MAX: usize = (net::MESSAGE_BYTES_MAX / 2) as usize;

fn unreachable<E: std::error::Error>(message: String) -> RPCError<NodeId, NodeInfo, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(message)))
}

impl MeshPeer {
    async fn call<Req, Resp, E>(
        &self,
        kind: RaftRpcKind,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body =
            serde_json::to_string(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.send(kind, body, option).await
    }

    async fn send<Resp, E>(
        &self,
        kind: RaftRpcKind,
        body: String,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, E>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let send = self.client.request(
            &self.node.peer_id,
            &self.node.addrs,
            PeerRequest::Raft { kind, body },
        );
        let response = match tokio::time::timeout(option.hard_ttl(), send).await {
            Err(_) => {
                return Err(unreachable(format!(
                    "raft rpc to {} timed out",
                    self.target
                )))
            }
            Ok(Err(error)) => return Err(unreachable(error.to_string())),
            Ok(Ok(response)) => response,
        };
        match response {
            PeerResponse::Raft { ok: true, body } => {
                serde_json::from_str(&body).map_err(|e| RPCError::Network(NetworkError::new(&e)))
            }
            PeerResponse::Raft { ok: false, body } => {
                let error: E = serde_json::from_str(&body)
                    .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
                Err(RPCError::RemoteError(RemoteError::new_with_node(
                    self.target,
                    self.node.clone(),
                    error,
                )))
            }
            other => Err(unreachable(format!(
                "peer {} refused raft rpc: {other:?}",
                self.target
            ))),
        }
    }
}

impl RaftNetwork<TypeConfig> for MeshPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        let body =
            serde_json::to_string(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        // Too many entries for one message: ask openraft to send fewer (it retries at once).
        if body.len() > RAFT_BODY_BYTES_MAX && rpc.entries.len() > 1 {
            let fewer = (rpc.entries.len() / 2) as u64;
            return Err(PayloadTooLarge::new_entries_hint(fewer).into());
        }
        self.send(RaftRpcKind::AppendEntries, body, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(RaftRpcKind::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.call(RaftRpcKind::Vote, &rpc, &option).await
    }
}
