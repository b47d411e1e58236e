//! Outbound TLS: the token endpoint and the upstream over https, both verified against the
//! system's trust store (here the file `SSL_CERT_FILE` names, which rustls-native-certs reads in
//! place of the system's), and refused when no CA in it signed the server's certificate; the
//! upstream spoken to in HTTP/2 when it offers it over ALPN (RFC 7301), else HTTP/1.1, on a kept
//! connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use defender_sim::{Sim, SimOptions};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::support::{BinaryProxy, client, mde_config};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A TLS acceptor with the fixture certificate (`localhost` and 127.0.0.1, signed by
/// `tls-ca.pem`), offering `alpn`.
fn acceptor(alpn: &[&[u8]]) -> TlsAcceptor {
    let certs = CertificateDer::pem_file_iter(fixture("tls-server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("tls-server.key")).unwrap();
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(config))
}

/// Serves https as `localhost` in front of the plain-HTTP server at `plain`, byte for byte;
/// returns its base URL.
async fn tls_in_front_of(plain: &str) -> String {
    let to: SocketAddr = plain.trim_start_matches("http://").parse().unwrap();
    let acceptor = acceptor(&[]);
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

/// An HTTPS upstream on 127.0.0.1 with the fixtures' server certificate, offering `alpn`, that
/// answers every request with the HTTP version it came in and whether it had a bearer token; it
/// counts the connections it accepted.
async fn tls_upstream(alpn: &[&[u8]]) -> (String, Arc<AtomicUsize>) {
    let acceptor = acceptor(alpn);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let accepted = connections.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|request: http::Request<Incoming>| {
                    let answer = serde_json::json!({
                        "version": format!("{:?}", request.version()),
                        "bearer": request
                            .headers()
                            .get(http::header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| v.starts_with("Bearer ")),
                    });
                    async move {
                        Ok::<_, Infallible>(
                            http::Response::builder()
                                .header(http::header::CONTENT_TYPE, "application/json")
                                .body(Full::new(Bytes::from(answer.to_string())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (url, connections)
}

/// Three requests through a proxy (the binary, so that `SSL_CERT_FILE` is its own) whose /mde
/// route goes to an upstream offering `alpn`: what the upstream saw of each, and how many
/// connections it accepted.
async fn through_tls_upstream(alpn: &[&[u8]]) -> (Vec<Value>, usize) {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let (upstream, connections) = tls_upstream(alpn).await;
    let dir = std::env::temp_dir().join(format!(
        "dtp-upstream-tls-{}-{}",
        std::process::id(),
        alpn.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.toml");
    std::fs::write(&config, mde_config(&sim, "").replace(&sim.mde(), &upstream)).unwrap();
    let ca = fixture("tls-ca.pem");
    let proxy = BinaryProxy::start_with_env(&config, &[("SSL_CERT_FILE", &ca)]).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let response = client()
            .get(format!("{}/mde/api/alerts", proxy.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        seen.push(response.json::<Value>().await.unwrap());
    }
    drop(proxy);
    std::fs::remove_dir_all(dir).unwrap();
    (seen, connections.load(Ordering::SeqCst))
}

#[tokio::test]
async fn an_upstream_that_offers_http2_over_alpn_is_spoken_to_in_http2_on_one_kept_connection() {
    let (seen, connections) = through_tls_upstream(&[b"h2", b"http/1.1"]).await;
    for answer in &seen {
        assert_eq!(answer["version"], "HTTP/2.0", "{answer}");
        assert_eq!(answer["bearer"], true, "{answer}");
    }
    assert_eq!(connections, 1);
}

#[tokio::test]
async fn an_upstream_that_offers_only_http11_is_spoken_to_in_http11_on_one_kept_connection() {
    let (seen, connections) = through_tls_upstream(&[b"http/1.1"]).await;
    for answer in &seen {
        assert_eq!(answer["version"], "HTTP/1.1", "{answer}");
        assert_eq!(answer["bearer"], true, "{answer}");
    }
    assert_eq!(connections, 1);
}
