//! A TLS upstream, as Microsoft's are: its certificate verified against the system's trust store
//! (here the one `SSL_CERT_FILE` names), HTTP/2 when it offers it over ALPN (RFC 7301), else
//! HTTP/1.1, and its connections kept from one request to the next.

use std::convert::Infallible;
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
use tokio::net::TcpListener;

use crate::support::{BinaryProxy, client, mde_config};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// An HTTPS upstream on 127.0.0.1 with the fixtures' server certificate, offering `alpn`, that
/// answers every request with the HTTP version it came in and whether it had a bearer token; it
/// counts the connections it accepted.
async fn tls_upstream(alpn: &[&[u8]]) -> (String, Arc<AtomicUsize>) {
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
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
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
