//! Streaming: large bodies pass through both ways without being held in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use defender_sim::SimOptions;
use futures_util::StreamExt;

use crate::support::{TestProxy, client, resident_bytes};

const GIB: u64 = 1 << 30;
/// Generous: a proxy that buffered the body would grow by the whole gibibyte.
const MAX_GROWTH: u64 = 128 << 20;

#[tokio::test]
async fn a_one_gib_response_streams_through_with_bounded_memory() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let response = proxy.get(&format!("/mde/_sim/bytes?size={GIB}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(GIB));
    let baseline = resident_bytes();
    let mut peak = baseline;
    let mut received = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        received += chunk.unwrap().len() as u64;
        if received % (64 << 20) < 65536 {
            peak = peak.max(resident_bytes());
        }
    }
    assert_eq!(received, GIB);
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "1 GiB streamed: resident memory grew by {} KiB",
        growth >> 10
    );
    assert!(
        growth < MAX_GROWTH,
        "resident memory grew by {} MiB",
        growth >> 20
    );
}

#[tokio::test]
async fn a_large_request_body_streams_to_the_upstream() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    const SIZE: u64 = 256 << 20;
    const CHUNK: usize = 1 << 20;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let chunks = futures_util::stream::iter(0..SIZE / CHUNK as u64).map(move |_| {
        counter.fetch_add(CHUNK as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(vec![7u8; CHUNK])
    });
    let response = client()
        .post(format!("{}/mde/_sim/count", proxy.url))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let counted: serde_json::Value = response.json().await.unwrap();
    assert_eq!(counted["bytes"], SIZE);
    assert_eq!(sent.load(Ordering::Relaxed), SIZE);
}
