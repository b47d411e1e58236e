//! Client-side rate limits: a route's budget lets a burst of its limit through, makes the next
//! requests wait in a bounded queue until the burst has left the window, and answers 429 with Retry-After when the wait would be too long; an
//! upstream 429 holds the route until its Retry-After has passed.

use std::time::{Duration, Instant};

use defender_sim::SimOptions;
use futures_util::future::join_all;
use serde_json::Value;

use crate::support::{TestProxy, client, mde_config};

async fn limited(server_extra: &str, rate_limit: &str) -> TestProxy {
    let (server_extra, rate_limit) = (server_extra.to_owned(), rate_limit.to_owned());
    TestProxy::start_with(SimOptions::default(), move |sim| {
        format!(
            "{}rate_limit = {rate_limit}\n",
            mde_config(sim, &server_extra)
        )
    })
    .await
}

#[tokio::test]
async fn a_request_that_would_wait_too_long_gets_429_with_retry_after() {
    let proxy = limited("rate_limit_max_wait = \"100ms\"", "{ per_minute = 2 }").await;
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    let refused = proxy.get("/mde/api/alerts").await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // The two calls leave the minute's window 60 to 61 s after they went.
    assert!((59..=61).contains(&retry_after), "{retry_after}");
    assert!(refused.headers().contains_key("x-token-proxy-error"));
    assert_eq!(
        refused.json::<Value>().await.unwrap()["kind"],
        "rate_limited"
    );
    assert_eq!(
        proxy.control().api_requests(),
        2,
        "the refused request never left"
    );
    assert_eq!(
        proxy
            .metric(r#"defender_token_proxy_rate_limit_refusals_total{route="/mde"}"#)
            .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn past_the_burst_requests_wait_their_turn() {
    // 20 per 3 s: a burst of 20, then the next once the burst has left the window.
    let proxy = limited("", "{ per_minute = 20, window = \"3s\" }").await;
    let started = Instant::now();
    let http = client();
    let burst = (0..20).map(|_| http.get(format!("{}/mde/api/machines", proxy.url)).send());
    for response in join_all(burst).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(proxy.get("/mde/api/machines").await.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(2900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        proxy
            .metric(r#"defender_token_proxy_rate_limit_waits_total{route="/mde"}"#)
            .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn an_upstream_429_holds_the_route_until_its_retry_after() {
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        mde_config(sim, "rate_limit_max_wait = \"1s\"")
    })
    .await;
    // The simulator answers 429 with Retry-After: 7.
    assert_eq!(proxy.get("/mde/_sim/status/429").await.status(), 429);
    let sent = proxy.control().api_requests();
    let held = proxy.get("/mde/api/alerts").await;
    assert_eq!(held.status(), 429);
    let retry_after: u64 = held.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((6..=7).contains(&retry_after), "{retry_after}");
    assert_eq!(held.json::<Value>().await.unwrap()["kind"], "rate_limited");
    assert_eq!(
        proxy.control().api_requests(),
        sent,
        "held requests are not sent"
    );
}
