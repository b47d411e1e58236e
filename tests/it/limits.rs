//! Limits and faults: oversized headers (431), slow clients, oversized bodies (413), load shedding
//! (503), the connection cap, thousands of idle connections in bounded memory, an upstream that
//! resets mid-body, a client that goes away mid-stream (the upstream read is cancelled), and limits
//! beyond what the runtime holds refused at start-up.

use std::time::Duration;

use defender_sim::SimOptions;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestProxy, client, eventually, mde_config, resident_bytes};

async fn proxy_with(server_extra: &str, route_extra: &str) -> TestProxy {
    let (server_extra, route_extra) = (server_extra.to_owned(), route_extra.to_owned());
    TestProxy::start_with(SimOptions::default(), move |sim| {
        format!("{}{route_extra}\n", mde_config(sim, &server_extra))
    })
    .await
}

#[tokio::test]
async fn oversized_request_headers_get_431() {
    let proxy = proxy_with("max_header_bytes = 16384", "").await;
    let response = client()
        .get(format!("{}/mde/api/alerts", proxy.url))
        .header("x-padding", "a".repeat(32 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let proxy = proxy_with("header_read_timeout = \"300ms\"", "").await;
    let mut tcp = TcpStream::connect(proxy.url.trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(b"GET /mde/api/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was not closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_body_over_the_route_limit_gets_413() {
    let proxy = proxy_with("", "max_body_bytes = 1000").await;
    let declared = client()
        .post(format!("{}/mde/_sim/count", proxy.url))
        .body(vec![1u8; 2000])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    let body: Value = declared.json().await.unwrap();
    assert_eq!(body["kind"], "body_too_large");
    assert_eq!(
        proxy.control().api_requests(),
        0,
        "refused before anything was sent"
    );
    let chunks =
        futures_util::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(vec![1u8; 600])));
    let chunked = client()
        .post(format!("{}/mde/_sim/count", proxy.url))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);
    let small = client()
        .post(format!("{}/mde/_sim/count", proxy.url))
        .body(vec![1u8; 999])
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_are_shed_with_503() {
    let proxy = proxy_with("max_concurrent_requests = 1", "").await;
    let slow = proxy.in_flight("/mde/_sim/slow?ms=1500").await;
    let shed = proxy.get("/mde/api/alerts").await;
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_eq!(shed.json::<Value>().await.unwrap()["kind"], "overloaded");
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    assert_eq!(
        proxy.get("/mde/api/alerts").await.status(),
        200,
        "the slot is free again"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed() {
    let proxy = proxy_with("max_connections = 2", "").await;
    let address = proxy.url.trim_start_matches("http://").to_owned();
    let _held = [
        TcpStream::connect(&address).await.unwrap(),
        TcpStream::connect(&address).await.unwrap(),
    ];
    let mut third = TcpStream::connect(&address).await.unwrap();
    let host = address.clone();
    let _ = third
        .write_all(format!("GET /-/healthy HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok() && answer.is_empty(),
        "the third connection was served"
    );
}

#[tokio::test]
async fn five_thousand_idle_connections_stay_in_bounded_memory() {
    const CONNECTIONS: usize = 5_000;
    let proxy = proxy_with("", "").await;
    let address = proxy.url.trim_start_matches("http://").to_owned();
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    let baseline = resident_bytes();
    let mut idle = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        idle.push(TcpStream::connect(&address).await.unwrap());
    }
    // Every connection is accepted and waiting for its request before memory is read.
    assert!(
        eventually(Duration::from_secs(20), || async {
            proxy.get("/mde/api/alerts").await.status() == 200
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let growth = resident_bytes().saturating_sub(baseline);
    eprintln!(
        "{CONNECTIONS} idle connections: resident memory grew by {} KiB",
        growth >> 10
    );
    // Client and server ends both live in this process.
    assert!(
        growth < (CONNECTIONS as u64) * 32 * 1024,
        "{} MiB for {CONNECTIONS} idle connections",
        growth >> 20
    );
    drop(idle);
}

#[tokio::test]
async fn an_upstream_reset_mid_body_ends_the_clients_response_with_an_error() {
    let proxy = proxy_with("", "").await;
    let response = proxy
        .get("/mde/_sim/bytes?size=10000000&reset_after=3000000")
        .await;
    assert_eq!(response.status(), 200);
    let mut received = 0usize;
    let mut body = response.bytes_stream();
    let mut failed = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => received += chunk.len(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed,
        "the truncated body must not look complete ({received} bytes)"
    );
    assert!(received < 10_000_000);
    assert_eq!(
        proxy.get("/mde/api/alerts").await.status(),
        200,
        "the proxy carries on"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_mid_stream_cancels_the_upstream_read() {
    let proxy = proxy_with("", "").await;
    let response = proxy.get("/mde/_sim/bytes?size=4000000000").await;
    let mut body = response.bytes_stream();
    for _ in 0..4 {
        body.next().await.unwrap().unwrap();
    }
    assert_eq!(proxy.control().open_streams(), 1);
    drop(body);
    let control = proxy.control();
    let cancelled = eventually(Duration::from_secs(10), || async {
        control.open_streams() == 0
    })
    .await;
    assert!(
        cancelled,
        "the upstream kept streaming after the client left"
    );
}

#[tokio::test]
async fn numbers_beyond_the_runtime_at_start_up_exit_2_naming_the_key_not_101() {
    let sim = defender_sim::Sim::start(SimOptions::default())
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("dtp-huge-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (key, value) in [
        ("max_concurrent_requests", "9223372036854775807"),
        ("max_connections", "9223372036854775807"),
        ("header_read_timeout", "\"100000000years\""),
    ] {
        let config = dir.join("proxy.toml");
        let server = format!("{key} = {value}");
        std::fs::write(&config, mde_config(&sim, &server)).unwrap();
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_defender-token-proxy"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("SECRET", crate::support::SECRET)
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(10), output)
            .await
            .expect("the proxy exits")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{key}: {stderr}");
        assert!(stderr.contains(&format!("server.{key}")), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
