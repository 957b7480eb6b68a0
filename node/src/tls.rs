//! TLS for the API: the one place that imports `rustls`, `tokio_rustls`, `rcgen` and
//! `rustls_native_certs`. The server side loads a PEM certificate chain and key and
//! completes handshakes; the client side builds the configuration that `client` hands to its
//! HTTP and WebSocket connections (system roots, an extra CA file, or no verification for
//! development); `self_signed` makes the certificate `colonymesh dev --tls` serves.
//!
//! Every configuration uses the `ring` provider explicitly: nothing depends on a process-wide
//! default provider being installed.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;

/// Why TLS could not be set up; names the file or the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("read TLS certificate {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("read TLS private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("TLS certificate {cert} and key {key} do not make a server configuration: {reason}")]
    Server {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("read CA file {path}: {reason}")]
    Ca { path: PathBuf, reason: String },
    #[error("TLS client configuration: {0}")]
    Client(String),
    #[error("make a self-signed certificate: {0}")]
    SelfSigned(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in the file".into());
    }
    Ok(certs)
}

/// The server side: accepts TLS connections with one certificate chain.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
}

/// A TLS connection accepted by `ServerTls`.
pub type ServerStream = tokio_rustls::server::TlsStream<TcpStream>;

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

impl ServerTls {
    /// Loads a PEM certificate chain (leaf first) and its PEM private key.
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let chain = read_certificates(cert).map_err(|reason| TlsError::Certificate {
            path: cert.to_path_buf(),
            reason,
        })?;
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
            path: key.to_path_buf(),
            reason: e.to_string(),
        })?;
        let server_error = |reason: String| TlsError::Server {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason,
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| server_error(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| server_error(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Completes the handshake on an accepted TCP connection. Callers bound it in time.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<ServerStream> {
        self.acceptor.accept(stream).await
    }
}

/// What a client trusts when it speaks TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// A PEM file of extra trusted certificates (a private CA, or a self-signed certificate).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (development only: anyone in the path can read and change
    /// the traffic).
    pub skip_verify: bool,
}

/// A client configuration, shared by the connections of one client.
pub type ClientConfig = Arc<rustls::ClientConfig>;

/// The client configuration for `tls`: the system's roots plus `ca_file`, or no verification.
pub fn client_config(tls: &ClientTls) -> Result<ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Client(e.to_string()))?;
    let mut config = if tls.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system roots leave only the CA file; errors here are not fatal.
        let system = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(system.certs);
        if let Some(path) = &tls.ca_file {
            let ca_error = |reason: String| TlsError::Ca {
                path: path.clone(),
                reason,
            };
            for cert in read_certificates(path).map_err(ca_error)? {
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A verifier that accepts every certificate but still checks handshake signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A self-signed certificate for `names` (host names or IP addresses): PEM certificate and
/// PEM private key. Clients trust it by taking the certificate as their CA file.
pub fn self_signed(names: &[String]) -> Result<(String, String), TlsError> {
    let certified = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::SelfSigned(e.to_string()))?;
    Ok((certified.cert.pem(), certified.key_pair.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_loads_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, &cert).unwrap();
        std::fs::write(&key_path, &key).unwrap();
        ServerTls::load(&cert_path, &key_path).expect("loads");
        let trusted = ClientTls {
            ca_file: Some(cert_path.clone()),
            skip_verify: false,
        };
        client_config(&trusted).expect("the certificate is a usable CA");

        let missing = dir.path().join("missing.pem");
        let error = ServerTls::load(&missing, &key_path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing.pem"), "{error}");
        let error = ServerTls::load(&cert_path, &cert_path)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("private key") && error.contains("cert.pem"),
            "{error}"
        );
        let error = ServerTls::load(&key_path, &key_path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("no PEM certificate"), "{error}");
        let bad_ca = ClientTls {
            ca_file: Some(key_path),
            skip_verify: false,
        };
        let error = client_config(&bad_ca).unwrap_err().to_string();
        assert!(
            error.contains("CA file") && error.contains("key.pem"),
            "{error}"
        );
    }
}
