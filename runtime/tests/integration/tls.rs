//! TLS between peers (a peer without a certificate from the cluster's CA is refused) and on
//! the client port (a plain TCP client is refused; clients check the node's certificate).

use crate::common;

use common::Scratch;
use raft_core::NodeId;
use runtime::frame::read_frame;
use runtime::tls::PeerTls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Connects over TLS with `connector`, sends one frame and reports whether the node kept
/// talking (`true`) or cut the connection off.
async fn accepted(connector: &TlsConnector, addr: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let Ok(mut tls) = connector
        .connect(PeerTls::server_name(NodeId(1)), stream)
        .await
    else {
        return false;
    };
    // TLS 1.3 reports a refused client certificate on the first read after the handshake;
    // an accepted peer just sees nothing to read.
    // Still open after the wait (the timeout fired): nothing to read, no error.
    tokio::time::timeout(Duration::from_millis(500), read_frame(&mut tls, 16))
        .await
        .is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_need_a_certificate_from_the_cluster_ca() {
    let _turn = common::processes_turn().await;
    let scratch = Scratch::new("tls");
    let cluster = common::cluster(&scratch, 3, true).await;
    let certs = scratch.0.join("cluster").join("certs");
    let addr = cluster.addrs[&NodeId(1)].peer;

    // No client certificate at all.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let ca = std::fs::read(certs.join("ca.pem")).unwrap();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let anonymous = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let anonymous = TlsConnector::from(Arc::new(anonymous));
    assert!(
        !accepted(&anonymous, addr).await,
        "a peer without a certificate was accepted"
    );

    // A certificate from another CA (which trusts this cluster's CA, so only the client side
    // of the handshake can fail).
    let other = scratch.0.join("other-ca");
    runtime::tls::generate(&other, &[NodeId(2)]).unwrap();
    let ca_certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&ca)
        .map(|c| c.unwrap())
        .collect();
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&std::fs::read(other.join("node-2.pem")).unwrap())
            .map(|c| c.unwrap())
            .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(
        &std::fs::read(other.join("node-2.key")).unwrap(),
    )
    .unwrap();
    let stranger = PeerTls::from_parts(ca_certs, chain, key).unwrap();
    assert!(
        !accepted(&stranger.connector, addr).await,
        "a peer with another CA's certificate was accepted"
    );

    // The cluster's own certificate is accepted (so the refusals above are about the
    // certificate, not about this test's client).
    let member = PeerTls::load(&certs, NodeId(2)).unwrap();
    assert!(
        accepted(&member.connector, addr).await,
        "a member was refused"
    );

    let log = std::fs::read_to_string(cluster.log_file(NodeId(1))).unwrap();
    assert!(
        log.contains("tls handshake refused"),
        "no refusal logged:\n{log}"
    );
}

/// The client port is TLS too: a plain TCP client is refused, as is a TLS client that does
/// not trust the cluster's CA, while a client with the CA's `ca.pem` is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_port_refuses_plain_tcp_and_checks_the_node_certificate() {
    let _turn = common::processes_turn().await;
    let scratch = Scratch::new("tls-client");
    let cluster = common::cluster(&scratch, 1, true).await;
    let status = |security: runtime::ClientSecurity| {
        let servers = cluster.client_addrs();
        async move {
            let mut client = runtime::KvClient::new(
                workloads::ClientId(5),
                servers,
                security,
                Duration::from_millis(500),
            )
            .unwrap();
            client.status(NodeId(1)).await
        }
    };
    assert!(
        status(cluster.client_security()).await.is_some(),
        "a client with the cluster CA was not served"
    );
    assert!(
        status(runtime::ClientSecurity::Plain).await.is_none(),
        "a plain TCP client was served by a TLS node"
    );
    let other = scratch.0.join("other-ca");
    runtime::tls::generate(&other, &[NodeId(1)]).unwrap();
    let stranger = runtime::ClientSecurity::tls_from_certs_dir(&other).unwrap();
    assert!(
        status(stranger).await.is_none(),
        "a client accepted a node certificate from another CA"
    );
    let log = std::fs::read_to_string(cluster.log_file(NodeId(1))).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("closed client connection") && l.contains("tls handshake refused")),
        "no refusal of the plain client logged:\n{log}"
    );
}
