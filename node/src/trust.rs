//! Mesh trust: the one place that imports `ed25519-dalek`. A mesh has a root Ed25519 key; the
//! operator's `colonymesh init` makes it, `token create` signs join tokens with it, and nodes
//! holding it (admission nodes) sign node certificates over joiners' libp2p peer ids. Every
//! peer request carries the sender's certificate, checked against the mesh's root public key.
//!
//! Files: `<mesh dir>/mesh.json` (public: mesh id, root public key, server owner id) and
//! `<mesh dir>/mesh-root.key` (secret, 0600); each node keeps `mesh.json` and `node.cert` in
//! its data dir.

use anyhow::Context as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use proto::mesh::{Certificate, TokenClaims};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

pub const MESH_FILE: &str = "mesh.json";
pub const ROOT_KEY_FILE: &str = "mesh-root.key";
pub const CERT_FILE: &str = "node.cert";

/// Why a token or certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("malformed join token: {0}")]
    MalformedToken(&'static str),
    #[error("join token signature is invalid")]
    TokenSignature,
    #[error("join token expired")]
    TokenExpired,
    #[error("join token is for mesh {0}, not this one")]
    OtherMesh(String),
    #[error("certificate is for another mesh")]
    CertificateMesh,
    #[error("certificate is for peer {cert}, but the sender is {sender}")]
    CertificatePeer { cert: String, sender: String },
    #[error("certificate signature is invalid")]
    CertificateSignature,
    #[error("no mesh certificate presented")]
    NoCertificate,
    #[error("certificate of peer {0} was revoked")]
    Revoked(String),
}

/// The public facts of a mesh (`mesh.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshIdentity {
    pub mesh_id: String,
    /// Hex Ed25519 public key of the root.
    pub root_public_key: String,
    /// ColonyOS server owner id chosen at init, if any.
    pub server_id: Option<String>,
}

/// The mesh root's signing key (only on the operator's machine and admission nodes).
pub struct RootKey {
    key: SigningKey,
}

fn root_verifying_key(identity: &MeshIdentity) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(&identity.root_public_key)
        .ok()?
        .try_into()
        .ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

fn signature_of(hex_text: &str) -> Option<Signature> {
    let bytes: [u8; 64] = hex::decode(hex_text).ok()?.try_into().ok()?;
    Some(Signature::from_bytes(&bytes))
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mode = if secret { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("write {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("sync {}", path.display()))
}

/// Creates a new mesh in `dir`: root key from `entropy`, mesh id from `mesh_entropy`.
pub fn init(
    dir: &Path,
    server_id: Option<String>,
    entropy: [u8; 32],
    mesh_entropy: [u8; 16],
) -> anyhow::Result<MeshIdentity> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    if dir.join(MESH_FILE).exists() {
        anyhow::bail!("{} already holds a mesh", dir.display());
    }
    let key = SigningKey::from_bytes(&entropy);
    let identity = MeshIdentity {
        mesh_id: hex::encode(mesh_entropy),
        root_public_key: hex::encode(key.verifying_key().to_bytes()),
        server_id,
    };
    write_file(
        &dir.join(ROOT_KEY_FILE),
        hex::encode(key.to_bytes()).as_bytes(),
        true,
    )?;
    save_identity(dir, &identity)?;
    Ok(identity)
}

pub fn save_identity(dir: &Path, identity: &MeshIdentity) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(identity).expect("identity serializes");
    write_file(&dir.join(MESH_FILE), text.as_bytes(), false)
}

/// Reads `mesh.json` from `dir`, if present.
pub fn load_identity(dir: &Path) -> anyhow::Result<Option<MeshIdentity>> {
    let path = dir.join(MESH_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// Reads the root key from `dir`, if present, checking it matches `identity`.
pub fn load_root_key(dir: &Path, identity: &MeshIdentity) -> anyhow::Result<Option<RootKey>> {
    let path = dir.join(ROOT_KEY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{} is not a 32-byte hex key", path.display()))?;
    let key = SigningKey::from_bytes(&bytes);
    if hex::encode(key.verifying_key().to_bytes()) != identity.root_public_key {
        anyhow::bail!(
            "{} does not belong to mesh {}",
            path.display(),
            identity.mesh_id
        );
    }
    Ok(Some(RootKey { key }))
}

impl RootKey {
    /// A join token for `identity`'s mesh, valid until `expires_unix`.
    pub fn token(&self, identity: &MeshIdentity, expires_unix: i64, nonce: [u8; 16]) -> String {
        let claims = TokenClaims {
            mesh_id: identity.mesh_id.clone(),
            root_public_key: identity.root_public_key.clone(),
            expires_unix,
            nonce: hex::encode(nonce),
        };
        let body = B64.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let signature = self.key.sign(body.as_bytes());
        format!("{body}.{}", B64.encode(signature.to_bytes()))
    }

    /// A certificate for `peer_id` in `mesh_id`.
    pub fn certify(&self, mesh_id: &str, peer_id: &str, issued_unix: i64) -> Certificate {
        let text = Certificate::signed_text(mesh_id, peer_id, issued_unix);
        let signature = self.key.sign(text.as_bytes());
        Certificate {
            mesh_id: mesh_id.to_string(),
            peer_id: peer_id.to_string(),
            issued_unix,
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

/// Checks a token's signature (by the root key it names) and returns its claims; expiry and
/// mesh are checked by `check_token`.
pub fn parse_token(token: &str) -> Result<TokenClaims, TrustError> {
    let (body, signature) = token
        .trim()
        .split_once('.')
        .ok_or(TrustError::MalformedToken("no '.'"))?;
    let claims: TokenClaims = B64
        .decode(body)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(TrustError::MalformedToken("body is not base64 json"))?;
    let signature: [u8; 64] = B64
        .decode(signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(TrustError::MalformedToken(
            "signature is not 64 base64 bytes",
        ))?;
    let identity = MeshIdentity {
        mesh_id: claims.mesh_id.clone(),
        root_public_key: claims.root_public_key.clone(),
        server_id: None,
    };
    let root = root_verifying_key(&identity).ok_or(TrustError::MalformedToken("bad root key"))?;
    root.verify(body.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| TrustError::TokenSignature)?;
    Ok(claims)
}

/// Checks a token for this mesh at `now_unix`.
pub fn check_token(identity: &MeshIdentity, token: &str, now_unix: i64) -> Result<(), TrustError> {
    let claims = parse_token(token)?;
    if claims.mesh_id != identity.mesh_id || claims.root_public_key != identity.root_public_key {
        return Err(TrustError::OtherMesh(claims.mesh_id));
    }
    if claims.expires_unix < now_unix {
        return Err(TrustError::TokenExpired);
    }
    Ok(())
}

/// Checks that `cert` is the root's signature over `sender` in this mesh.
pub fn check_certificate(
    identity: &MeshIdentity,
    cert: &Certificate,
    sender: &str,
) -> Result<(), TrustError> {
    if cert.mesh_id != identity.mesh_id {
        return Err(TrustError::CertificateMesh);
    }
    if cert.peer_id != sender {
        return Err(TrustError::CertificatePeer {
            cert: cert.peer_id.clone(),
            sender: sender.into(),
        });
    }
    let root = root_verifying_key(identity).ok_or(TrustError::CertificateSignature)?;
    let signature = signature_of(&cert.signature).ok_or(TrustError::CertificateSignature)?;
    let text = Certificate::signed_text(&cert.mesh_id, &cert.peer_id, cert.issued_unix);
    root.verify(text.as_bytes(), &signature)
        .map_err(|_| TrustError::CertificateSignature)
}

/// Checks peers' certificates, remembering peers already verified and refusing revoked ones.
pub struct Verifier {
    identity: MeshIdentity,
    /// Peer ids whose certificate verified; bounded by the mesh size (certified peers only).
    verified: Mutex<HashSet<String>>,
    /// Peer ids revoked locally (tests, and until the replicated revocation applies).
    revoked: Mutex<HashSet<String>>,
    /// Asks the replicated state whether a peer was revoked.
    revoked_in_state: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

impl Verifier {
    /// A verifier for `identity`'s mesh that also refuses peers `revoked_in_state` names.
    pub fn new(
        identity: MeshIdentity,
        revoked_in_state: Box<dyn Fn(&str) -> bool + Send + Sync>,
    ) -> Verifier {
        Verifier {
            identity,
            verified: Mutex::default(),
            revoked: Mutex::default(),
            revoked_in_state,
        }
    }

    pub fn identity(&self) -> &MeshIdentity {
        &self.identity
    }

    /// Accepts `sender` if it presents (or presented before) a valid, unrevoked certificate.
    pub fn check(&self, sender: &str, cert: Option<&Certificate>) -> Result<(), TrustError> {
        if self.revoked.lock().expect("lock").contains(sender) || (self.revoked_in_state)(sender) {
            return Err(TrustError::Revoked(sender.to_string()));
        }
        if self.verified.lock().expect("lock").contains(sender) {
            return Ok(());
        }
        let cert = cert.ok_or(TrustError::NoCertificate)?;
        check_certificate(&self.identity, cert, sender)?;
        self.verified
            .lock()
            .expect("lock")
            .insert(sender.to_string());
        Ok(())
    }

    /// Stops accepting `peer_id`'s certificate.
    pub fn revoke(&self, peer_id: &str) {
        self.verified.lock().expect("lock").remove(peer_id);
        self.revoked
            .lock()
            .expect("lock")
            .insert(peer_id.to_string());
    }
}

/// Reads this node's certificate from its data dir, if it has one.
pub fn load_certificate(data_dir: &Path) -> anyhow::Result<Option<Certificate>> {
    let path = data_dir.join(CERT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

pub fn save_certificate(data_dir: &Path, cert: &Certificate) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(cert).expect("certificate serializes");
    write_file(&data_dir.join(CERT_FILE), text.as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mesh() -> (tempfile::TempDir, MeshIdentity, RootKey) {
        let dir = tempfile::tempdir().unwrap();
        let identity = init(dir.path(), None, [7; 32], [1; 16]).unwrap();
        let root = load_root_key(dir.path(), &identity).unwrap().unwrap();
        (dir, identity, root)
    }

    #[test]
    fn tokens_verify_expire_and_bind_to_their_mesh() {
        let (_dir, identity, root) = mesh();
        let token = root.token(&identity, 1_000, [2; 16]);
        assert_eq!(check_token(&identity, &token, 999), Ok(()));
        assert_eq!(
            check_token(&identity, &token, 1_001),
            Err(TrustError::TokenExpired)
        );
        let (_other_dir, other, _) = {
            let dir = tempfile::tempdir().unwrap();
            let other = init(dir.path(), None, [8; 32], [3; 16]).unwrap();
            (dir, other, ())
        };
        assert!(matches!(
            check_token(&other, &token, 0),
            Err(TrustError::OtherMesh(_))
        ));
        let mut forged = token.clone();
        forged.insert(3, 'A');
        assert!(check_token(&identity, &forged, 0).is_err());
    }

    #[test]
    fn certificates_bind_peer_and_can_be_revoked() {
        let (_dir, identity, root) = mesh();
        let cert = root.certify(&identity.mesh_id, "peer-a", 5);
        let verifier = Verifier::new(identity.clone(), Box::new(|_| false));
        assert_eq!(
            verifier.check("peer-b", Some(&cert)),
            Err(TrustError::CertificatePeer {
                cert: "peer-a".into(),
                sender: "peer-b".into()
            })
        );
        assert_eq!(
            verifier.check("peer-a", None),
            Err(TrustError::NoCertificate)
        );
        assert_eq!(verifier.check("peer-a", Some(&cert)), Ok(()));
        assert_eq!(verifier.check("peer-a", None), Ok(()), "remembered");
        verifier.revoke("peer-a");
        assert_eq!(
            verifier.check("peer-a", Some(&cert)),
            Err(TrustError::Revoked("peer-a".into()))
        );
        let mut tampered = root.certify(&identity.mesh_id, "peer-c", 5);
        tampered.issued_unix = 6;
        assert_eq!(
            verifier.check("peer-c", Some(&tampered)),
            Err(TrustError::CertificateSignature)
        );
    }
}
