//! Forwarding: the request target byte for byte, the token in place of inbound credentials, header
//! hygiene both ways, the upstream's Host, and redirects handed to the client.

use defender_sim::SimOptions;
use serde_json::Value;

use crate::support::{TestProxy, client, echoed, raw_body, raw_request};

#[tokio::test]
async fn a_client_supplied_authorization_header_is_replaced_by_the_proxys_token() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let response = client()
        .get(format!("{}/mde/_sim/echo", proxy.url))
        .header("authorization", "Bearer the-tools-own-token")
        .header("authorization", "Basic c2Vjb25kOnRva2Vu")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.unwrap();
    let authorization = echoed(&echo, "authorization");
    assert_eq!(authorization.len(), 1, "{authorization:?}");
    assert!(
        authorization[0].starts_with("Bearer eyJ"),
        "{authorization:?}"
    );
    assert_eq!(proxy.control().unauthorized(), 0);
}

#[tokio::test]
async fn the_path_and_query_reach_the_upstream_byte_for_byte() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let target = "/_sim/echo/a%20b/%7e/x%2By;p=1?$filter=severity%20eq%20'High'&$top=2&a=1&a=2&empty=&q=%E2%9C%93&u=a/../b";
    let host = proxy.url.trim_start_matches("http://");
    let raw = raw_request(
        &proxy.url,
        &format!("GET /mde{target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let echo: Value = serde_json::from_str(&raw_body(&raw)).unwrap();
    assert_eq!(echo["uri"], target);
}

#[tokio::test]
async fn the_route_prefix_alone_maps_to_the_upstream_root() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    // The simulated API answers unknown paths with its own 404 (after checking the token).
    let response = proxy.get("/mde").await;
    assert_eq!(response.status(), 404);
    assert!(response.headers().get("x-token-proxy-error").is_none());
}

#[tokio::test]
async fn hop_by_hop_cookie_and_proxy_headers_are_dropped_and_others_pass() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let host = proxy.url.trim_start_matches("http://");
    let raw = raw_request(
        &proxy.url,
        &format!(
            "GET /mde/_sim/echo HTTP/1.1\r\nHost: {host}\r\nConnection: close, x-private\r\n\
         X-Private: secret-hop\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eDp5\r\n\
         Cookie: session=abc\r\nTE: trailers\r\nAccept: application/json\r\n\
         X-Ms-Client-Request-Id: 1234\r\nUser-Agent: tool/1.0\r\n\r\n"
        ),
    )
    .await;
    let echo: Value = serde_json::from_str(&raw_body(&raw)).unwrap();
    for dropped in [
        "x-private",
        "keep-alive",
        "proxy-authorization",
        "cookie",
        "te",
        "connection",
    ] {
        assert!(
            echoed(&echo, dropped).is_empty(),
            "{dropped} reached the upstream"
        );
    }
    assert_eq!(echoed(&echo, "accept"), ["application/json"]);
    assert_eq!(echoed(&echo, "x-ms-client-request-id"), ["1234"]);
    assert_eq!(echoed(&echo, "user-agent"), ["tool/1.0"]);

    let response = proxy.get("/mde/_sim/headers").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    for dropped in [
        "set-cookie",
        "x-hop-extra",
        "keep-alive",
        "proxy-authenticate",
    ] {
        assert!(
            headers.get(dropped).is_none(),
            "{dropped} reached the client"
        );
    }
    assert_eq!(headers["x-kept"], "yes");
}

#[tokio::test]
async fn the_upstream_sees_its_own_host() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let echo: Value = client()
        .get(format!("{}/mde/_sim/echo", proxy.url))
        .header(
            "host",
            format!("localhost:{}", proxy.url.rsplit(':').next().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upstream_host = proxy.sim.mde().trim_start_matches("http://").to_owned();
    assert_eq!(echoed(&echo, "host"), [upstream_host]);
}

#[tokio::test]
async fn redirects_are_handed_to_the_client_not_followed() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let before = proxy.control().api_requests();
    let response = proxy.get("/mde/_sim/redirect").await;
    assert_eq!(response.status(), 302);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("/_sim/echo")
    );
    assert_eq!(proxy.control().api_requests(), before + 1);
}

#[tokio::test]
async fn request_bodies_and_methods_are_forwarded_unchanged() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    // Defender's body parameters are case-sensitive ("Query").
    let response = client()
        .post(format!("{}/mde/api/advancedqueries/run", proxy.url))
        .header("content-type", "application/json")
        .body(r#"{"Query":"DeviceProcessEvents | take 3"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.unwrap();
    assert!(
        result["Results"].as_array().is_some_and(|r| !r.is_empty()),
        "{result}"
    );
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
    ] {
        let echo: Value = client()
            .request(method.clone(), format!("{}/mde/_sim/echo", proxy.url))
            .body("x".repeat(1000))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(echo["method"], method.as_str());
        assert_eq!(echo["body_len"], 1000);
    }
}

#[tokio::test]
async fn http2_clients_are_served_too() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2
        .get(format!("{}/mde/api/alerts", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}
