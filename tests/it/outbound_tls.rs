//! Outbound TLS: the token endpoint and the upstream over https, both verified against the
//! system's trust store (here the file `SSL_CERT_FILE` names, which rustls-native-certs reads in
//! place of the system's), and refused when no CA in it signed the server's certificate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use defender_sim::{Sim, SimOptions};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::support::{BinaryProxy, client, mde_config};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Serves https as `localhost` (the fixture certificate, signed by `tls-ca.pem`) in front of the
/// plain-HTTP server at `plain`, byte for byte; returns its base URL.
async fn tls_in_front_of(plain: &str) -> String {
    let to: SocketAddr = plain.trim_start_matches("http://").parse().unwrap();
    let certs = CertificateDer::pem_file_iter(fixture("tls-server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("tls-server.key")).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let (Ok(mut tls), Ok(mut plain)) =
                    (acceptor.accept(tcp).await, TcpStream::connect(to).await)
                {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    format!("https://localhost:{port}")
}

/// The binary with the simulated API (and Entra ID, if `tls_entra`) behind https, trusting only
/// the CA in the fixture `ca`.
async fn proxy_trusting(sim: &Sim, tls_entra: bool, ca: &str, name: &str) -> BinaryProxy {
    let mut config = mde_config(sim, "").replace(&sim.mde(), &tls_in_front_of(&sim.mde()).await);
    if tls_entra {
        let authority = sim.authority();
        config = config.replace(&authority, &tls_in_front_of(&authority).await);
    }
    let dir = std::env::temp_dir().join(format!("dtp-{name}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("no-ca-dir")).unwrap();
    std::fs::write(dir.join("proxy.toml"), config).unwrap();
    BinaryProxy::start_with_env(
        &dir.join("proxy.toml"),
        &[
            ("SSL_CERT_FILE", &fixture(ca)),
            ("SSL_CERT_DIR", &dir.join("no-ca-dir")),
        ],
    )
    .await
}

async fn get_alerts(proxy: &BinaryProxy) -> reqwest::Response {
    client()
        .get(format!("{}/mde/api/alerts", proxy.url))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_https_token_endpoint_and_upstream_signed_by_a_trusted_ca_are_reached() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let proxy = proxy_trusting(&sim, true, "tls-ca.pem", "trusted-ca").await;
    assert_eq!(get_alerts(&proxy).await.status(), 200);
    assert_eq!(sim.control().token_requests(), 1);
    assert_eq!(sim.control().api_requests(), 1);
}

#[tokio::test]
async fn an_upstream_whose_ca_the_trust_store_lacks_is_refused_with_502() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let proxy = proxy_trusting(&sim, false, "tls-ca2.pem", "untrusted-upstream").await;
    assert_eq!(get_alerts(&proxy).await.status(), 502);
    assert_eq!(sim.control().api_requests(), 0);
}

#[tokio::test]
async fn a_token_endpoint_whose_ca_the_trust_store_lacks_is_sent_no_request() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let proxy = proxy_trusting(&sim, true, "tls-ca2.pem", "untrusted-entra").await;
    let response = get_alerts(&proxy).await;
    assert!(response.status().is_server_error(), "{}", response.status());
    assert_eq!(sim.control().token_requests(), 0);
    assert_eq!(sim.control().api_requests(), 0);
}
