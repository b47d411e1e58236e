//! Clients that hold what they can without sending: connections that never send a byte (main,
//! TLS and admin listeners), request bodies that stop half-way (buffered for replay or streamed),
//! and the admin listener's own connection cap.

use std::path::{Path, PathBuf};
use std::time::Duration;

use defender_sim::SimOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use defender_sim::Sim;

use crate::support::{BinaryProxy, TestProxy, client, eventually, mde_config};

/// Far longer than any timeout these tests configure, and shorter than the defaults they replace:
/// a connection still open by then was never going to be closed.
const DEADLINE: Duration = Duration::from_secs(8);

async fn proxy_with(server_extra: &str, after: &str) -> TestProxy {
    let (server_extra, after) = (server_extra.to_owned(), after.to_owned());
    TestProxy::start_with(SimOptions::default(), move |sim| {
        format!("{}{after}\n", mde_config(sim, &server_extra))
    })
    .await
}

fn address(url: &str) -> &str {
    url.trim_start_matches("http://")
}

/// Whether the peer closed `tcp` (end of stream or reset) within [`DEADLINE`], having sent at
/// most an error response.
async fn closed(tcp: &mut TcpStream) -> bool {
    let mut answer = Vec::new();
    match tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut answer)).await {
        Ok(Ok(_)) => {
            let answer = String::from_utf8_lossy(&answer);
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
                "{answer}"
            );
            true
        }
        Ok(Err(_)) => true,
        Err(_) => false,
    }
}

#[tokio::test]
async fn connections_that_never_send_a_byte_are_closed_and_stop_locking_clients_out() {
    const CAP: usize = 3;
    let proxy = proxy_with(
        &format!("header_read_timeout = \"1s\"\nmax_connections = {CAP}"),
        "",
    )
    .await;
    let mut silent = Vec::new();
    for _ in 0..CAP {
        silent.push(TcpStream::connect(address(&proxy.url)).await.unwrap());
    }
    for tcp in &mut silent {
        assert!(
            closed(tcp).await,
            "a connection that sent nothing is still open"
        );
    }
    let served = eventually(DEADLINE, || async {
        client()
            .get(format!("{}/mde/api/alerts", proxy.url))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(
        served,
        "a real client was not served once the silent ones were closed"
    );
}

#[tokio::test]
async fn silent_connections_to_each_localhost_listener_are_closed() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("dtp-silent-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.toml");
    let text =
        mde_config(&sim, "header_read_timeout = \"1s\"").replace("127.0.0.1:0", "localhost:0");
    std::fs::write(&config, text).unwrap();
    let proxy = BinaryProxy::start(&config).await;
    let port = proxy.url.rsplit(':').next().unwrap().to_owned();
    let mut addresses = vec![format!("127.0.0.1:{port}")];
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        addresses.push(format!("[::1]:{port}"));
    }
    for address in &addresses {
        let mut silent = TcpStream::connect(address).await.unwrap();
        assert!(
            closed(&mut silent).await,
            "{address}: the silent connection is still open"
        );
    }
    proxy.signal("TERM");
    let (status, _) = proxy.exit().await;
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[tokio::test]
async fn a_tls_connection_that_never_starts_its_handshake_is_closed_at_the_header_read_timeout() {
    let tls = format!(
        "\n[server.tls]\ncert = {:?}\nkey = {:?}\n",
        fixture("tls-server.pem").display().to_string(),
        fixture("tls-server.key").display().to_string(),
    );
    // Closed at 1 s, not at the handshake's own 10 s (beyond DEADLINE).
    let proxy = proxy_with("header_read_timeout = \"1s\"", &tls).await;
    let mut silent = TcpStream::connect(address(&proxy.url)).await.unwrap();
    assert!(
        closed(&mut silent).await,
        "the silent TLS connection is still open"
    );
}

#[tokio::test]
async fn idle_admin_connections_are_closed_after_the_header_read_timeout() {
    let proxy = proxy_with("header_read_timeout = \"1s\"", "").await;
    let mut silent = TcpStream::connect(address(&proxy.admin_url)).await.unwrap();
    assert!(
        closed(&mut silent).await,
        "the idle admin connection is still open"
    );
    assert_eq!(proxy.admin("/-/healthy").await.status(), 200);
}

#[tokio::test]
async fn admin_connections_beyond_its_cap_are_closed_and_the_main_listener_keeps_serving() {
    // The header timeout stays at its default (30 s): the held connections stay open.
    let proxy = proxy_with(
        "",
        "\n[admin]\nlisten = \"127.0.0.1:0\"\nmax_connections = 2\n",
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(address(&proxy.admin_url)).await.unwrap());
    }
    let refused_while_held = eventually(DEADLINE, || async {
        client()
            .get(format!("{}/-/healthy", proxy.admin_url))
            .send()
            .await
            .is_err()
    })
    .await;
    assert!(
        refused_while_held,
        "the admin listener took a third connection"
    );
    let mut beyond = Vec::new();
    for _ in 0..20 {
        beyond.push(TcpStream::connect(address(&proxy.admin_url)).await.unwrap());
    }
    for tcp in &mut beyond {
        assert!(
            closed(tcp).await,
            "an admin connection beyond the cap is open"
        );
    }
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    drop(held);
    let admin_back = eventually(DEADLINE, || async {
        client()
            .get(format!("{}/-/healthy", proxy.admin_url))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(
        admin_back,
        "the admin listener did not serve once its connections closed"
    );
}

/// Sends a POST to `path` declaring 100 body bytes and sending 10, and returns the answer, if it
/// comes within [`DEADLINE`].
async fn half_a_body(url: &str, path: &str) -> Option<String> {
    let mut tcp = TcpStream::connect(address(url)).await.unwrap();
    let host = address(url);
    tcp.write_all(
        format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\n0123456789")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(DEADLINE, tcp.read(&mut answer)).await;
    let n = read.ok()?.ok()?;
    Some(String::from_utf8_lossy(&answer[..n]).into_owned())
}

#[tokio::test]
async fn a_client_that_stops_sending_a_buffered_body_gets_408_and_frees_its_slot() {
    let proxy = proxy_with(
        "body_read_timeout = \"1s\"\nmax_concurrent_requests = 1",
        "",
    )
    .await;
    let answer = half_a_body(&proxy.url, "/mde/_sim/count")
        .await
        .expect("no answer to a request whose body stopped");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("x-token-proxy-error: request_timeout"),
        "{answer}"
    );
    assert!(answer.ends_with("}\n"), "{answer}");
    assert_eq!(
        proxy.control().api_requests(),
        0,
        "nothing was sent upstream"
    );
    assert_eq!(
        proxy.get("/mde/api/alerts").await.status(),
        200,
        "the in-flight slot is free again"
    );
}

#[tokio::test]
async fn a_client_that_stops_sending_a_streamed_body_gets_408_and_the_upstream_request_is_aborted()
{
    let proxy = proxy_with(
        "body_read_timeout = \"1s\"\nreplay_max_body_bytes = 16\nmax_concurrent_requests = 1",
        "",
    )
    .await;
    let answer = half_a_body(&proxy.url, "/mde/_sim/count")
        .await
        .expect("no answer to a request whose body stopped");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("x-token-proxy-error: request_timeout"),
        "{answer}"
    );
    assert_eq!(
        proxy.control().api_requests(),
        1,
        "the request went upstream as it streamed"
    );
    assert_eq!(
        proxy.get("/mde/api/alerts").await.status(),
        200,
        "the in-flight slot is free again"
    );
}
