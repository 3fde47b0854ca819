//! TLS between peers and on the client port: the cluster CA, node certificates (made by
//! `kvnode certs`) and the rustls configurations built from them.
//!
//! Every node holds a certificate signed by the cluster's CA, naming it `node-<id>` (plus
//! `localhost` and 127.0.0.1). Between peers both sides authenticate: a node accepting a peer
//! connection requires a client certificate from the CA (a peer without one fails the
//! handshake), and a node dialling peer `j` checks that the certificate presented is the CA's
//! `node-j`. On the client port only the node authenticates: a client ([`client_connector`],
//! which needs only `ca.pem`) checks that server `j` presents the CA's `node-j`, and presents
//! nothing itself (why: see [`crate::client_port`]). The crypto provider is rustls's `ring`
//! backend, which builds without cmake.
//!
//! Files in a certificate directory: `ca.pem` (the CA certificate), `ca.key` (its key, only
//! needed to make more node certificates), `node-<id>.pem` and `node-<id>.key`.

use raft_core::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A certificate directory could not be made or read, or a configuration not built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A PEM file held no usable certificate or key.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Config(String),
}

/// The name in node `id`'s certificate, and the server name a peer checks.
pub fn node_name(id: NodeId) -> String {
    format!("node-{}", id.0)
}

fn write(path: PathBuf, contents: &str) -> Result<(), TlsError> {
    std::fs::write(&path, contents).map_err(|source| TlsError::File { path, source })
}

/// Makes a CA and certificates for nodes `ids` in `dir` (created if needed). An existing CA
/// in `dir` is *not* reused: the command makes a fresh cluster identity.
///
/// # Errors
/// Generation or a file write failed.
pub fn generate(dir: &Path, ids: &[NodeId]) -> Result<Vec<PathBuf>, TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::File {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kvnode cluster CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let mut written = vec![dir.join("ca.pem"), dir.join("ca.key")];
    write(dir.join("ca.pem"), &ca_cert.pem())?;
    write(dir.join("ca.key"), &ca_key.serialize_pem())?;
    for &id in ids {
        let mut params = CertificateParams::new(vec![node_name(id), "localhost".to_string()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .distinguished_name
            .push(DnType::CommonName, node_name(id));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca_cert, &ca_key)?;
        let (pem, key_path) = (
            dir.join(format!("{}.pem", node_name(id))),
            dir.join(format!("{}.key", node_name(id))),
        );
        write(pem.clone(), &cert.pem())?;
        write(key_path.clone(), &key.serialize_pem())?;
        written.push(pem);
        written.push(key_path);
    }
    Ok(written)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::File {
        path: path.to_path_buf(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
    let certs = certs.map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            reason: "no certificate in the file".to_string(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A node's TLS identity: how it accepts peers and how it dials them, and how it accepts
/// clients.
#[derive(Clone)]
pub struct PeerTls {
    /// Accepts peers that present a certificate from the cluster CA.
    pub acceptor: TlsAcceptor,
    /// Dials peers, presenting this node's certificate.
    pub connector: TlsConnector,
    /// Accepts clients on the client port: this node's certificate, no client certificate.
    pub client_acceptor: TlsAcceptor,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

impl PeerTls {
    /// Loads node `id`'s identity from `dir` (see the module documentation for the files).
    ///
    /// # Errors
    /// A missing or malformed file, or a configuration rustls refuses.
    pub fn load(dir: &Path, id: NodeId) -> Result<PeerTls, TlsError> {
        let ca = certificates(&dir.join("ca.pem"))?;
        let chain = certificates(&dir.join(format!("{}.pem", node_name(id))))?;
        let key = private_key(&dir.join(format!("{}.key", node_name(id))))?;
        PeerTls::from_parts(ca, chain, key)
    }

    /// Builds the configurations from certificates already in memory.
    ///
    /// # Errors
    /// A configuration rustls refuses (for example a key that does not match the chain).
    pub fn from_parts(
        ca: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<PeerTls, TlsError> {
        let config_error = |e: rustls::Error| TlsError::Config(e.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in ca {
            roots.add(cert).map_err(config_error)?;
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config_error)?;
        let client_port = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config_error)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(config_error)?;
        Ok(PeerTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            client_acceptor: TlsAcceptor::from(Arc::new(client_port)),
        })
    }

    /// The server name to check when dialling peer `id`.
    pub fn server_name(id: NodeId) -> ServerName<'static> {
        ServerName::try_from(node_name(id)).expect("node-N is a valid DNS name")
    }
}

/// How a client dials a node's client port: trusting the cluster CA in `ca_pem` (the
/// `ca.pem` of a certificate directory) and presenting no certificate of its own.
///
/// # Errors
/// A missing or malformed file, or a configuration rustls refuses.
pub fn client_connector(ca_pem: &Path) -> Result<TlsConnector, TlsError> {
    let config_error = |e: rustls::Error| TlsError::Config(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_pem)? {
        roots.add(cert).map_err(config_error)?;
    }
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}
