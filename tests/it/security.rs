//! Hardening: the local proxy refuses browser attacks, foreign Host names and open-proxy use, and
//! enforces route allow-lists, all before any token is fetched. Each test's credential is broken,
//! so a check that ran after the token fetch would answer 502, not the refusal asserted here.

use defender_sim::SimOptions;
use serde_json::Value;

use crate::support::{TestProxy, client, mde_config, raw_request};

/// A proxy whose only credential Entra rejects.
async fn broken(server_extra: &str, route_extra: &str) -> TestProxy {
    let (server_extra, route_extra) = (server_extra.to_owned(), route_extra.to_owned());
    TestProxy::start_with(SimOptions::default(), move |sim| {
        format!("{}{route_extra}\n", mde_config(sim, &server_extra))
            .replace("{ env = \"SECRET\" }", "\"a-secret-entra-rejects\"")
    })
    .await
}

async fn kind(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["kind"].as_str().unwrap_or_default().to_owned())
}

fn raw_kind(raw: &str) -> (u16, String) {
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body: Value = serde_json::from_str(&crate::support::raw_body(raw)).unwrap_or_default();
    (status, body["kind"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn cross_site_browser_requests_are_refused_with_403() {
    let proxy = broken("allowed_origins = [\"https://tool.example\"]", "").await;
    let url = format!("{}/mde/api/alerts", proxy.url);
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let response = client()
            .post(&url)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(
            kind(response).await,
            (403, "cross_site_request".to_owned()),
            "{name}: {value}"
        );
    }
    // The one allowed origin gets through the screen (and then fails on the broken credential).
    let allowed = client()
        .get(&url)
        .header("origin", "https://tool.example")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status().as_u16() / 100, 5);
    assert_eq!(proxy.control().api_requests(), 0);
}

#[tokio::test]
async fn a_foreign_host_header_is_refused_against_dns_rebinding() {
    let proxy = broken("allowed_hosts = [\"proxy.internal\"]", "").await;
    let port = proxy.url.rsplit(':').next().unwrap().to_owned();
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        "localhost:1".to_owned(),
    ] {
        let response = client()
            .get(format!("{}/mde/api/alerts", proxy.url))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(
            kind(response).await,
            (403, "host_not_allowed".to_owned()),
            "{host}"
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("proxy.internal:{port}"),
        "proxy.internal".to_owned(),
    ] {
        let response = client()
            .get(format!("{}/mde/api/alerts", proxy.url))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16() / 100,
            5,
            "{host} passes the screen"
        );
    }
    // HTTP/2 carries the host as :authority.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2
        .get(format!("http://localhost:{port}/mde/api/alerts"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16() / 100, 5);
}

#[tokio::test]
async fn the_proxy_is_not_an_open_proxy() {
    let proxy = broken("", "").await;
    let host = proxy.url.trim_start_matches("http://").to_owned();
    let sim_host = proxy.sim.mde().trim_start_matches("http://").to_owned();
    for request in [
        format!(
            "GET http://{sim_host}/api/alerts HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ),
        format!("CONNECT {sim_host} HTTP/1.1\r\nHost: {sim_host}\r\nConnection: close\r\n\r\n"),
        format!(
            "GET /mde/../graph/v1.0/security/alerts_v2 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ),
        format!("GET /mde/%2e%2e/api HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        format!("GET /mde/api%2Falerts HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        format!("GET /mde/api%5c..%5calerts HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    ] {
        let raw = raw_request(&proxy.url, &request).await;
        let (status, kind) = raw_kind(&raw);
        // hyper itself answers some malformed forms (a CONNECT target) with a bare 400.
        assert_eq!(status, 400, "{request:?} -> {raw}");
        assert!(kind.is_empty() || kind == "target_refused", "{kind}");
    }
    assert_eq!(proxy.control().api_requests(), 0);
}

#[tokio::test]
async fn route_allow_lists_refuse_other_methods_and_paths_with_403() {
    let proxy = broken(
        "",
        "methods = [\"GET\"]\npaths = [\"POST /api/advancedqueries/run\"]",
    )
    .await;
    let url = |path: &str| format!("{}/mde{path}", proxy.url);
    for (method, path) in [
        (reqwest::Method::POST, "/api/machines/1/isolate"),
        (reqwest::Method::DELETE, "/api/indicators/1"),
        (reqwest::Method::POST, "/api/advancedqueries/run/more"),
    ] {
        let response = client()
            .request(method.clone(), url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            kind(response).await,
            (403, "route_forbids".to_owned()),
            "{method} {path}"
        );
    }
    // Allowed requests pass the allow-list (and then fail on the broken credential).
    let get = client().get(url("/api/machines")).send().await.unwrap();
    assert_eq!(get.status().as_u16() / 100, 5);
    let hunt = client()
        .post(url("/api/advancedqueries/run"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(hunt.status().as_u16() / 100, 5);
    assert_eq!(proxy.control().api_requests(), 0);
}

#[tokio::test]
async fn trace_and_track_are_refused_with_405_before_any_token_request() {
    let proxy = broken("", "").await;
    let host = proxy.url.trim_start_matches("http://").to_owned();
    for method in ["TRACE", "TRACK"] {
        let request = format!(
            "{method} /mde/api/alerts HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        );
        let raw = raw_request(&proxy.url, &request).await;
        assert_eq!(raw_kind(&raw), (405, "method_refused".to_owned()), "{raw}");
        let head = raw.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
        assert!(head.contains("\r\nallow: get, "), "{head}");
        assert!(
            head.contains("x-token-proxy-error: method_refused"),
            "{head}"
        );
        assert!(
            head.contains("content-type: application/problem+json"),
            "{head}"
        );
    }
    // The credential is broken: a check after the token would have answered 502.
    assert_eq!(proxy.control().api_requests(), 0);
}

#[tokio::test]
async fn duplicate_chunked_codings_duplicate_hosts_and_a_host_against_the_target_get_400() {
    let proxy = broken("", "").await;
    let host = proxy.url.trim_start_matches("http://").to_owned();
    // hyper lets each of these through (checked with this test before the screen refused them).
    for (head, body) in [
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "0\r\n\r\n",
        ),
        ("Transfer-Encoding: chunked, chunked", "0\r\n\r\n"),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: CHUNKED",
            "0\r\n\r\n",
        ),
        (&format!("Host: {host}") as &str, ""),
        ("Host: evil.example", ""),
    ] {
        let request = format!(
            "POST /mde/api/alerts HTTP/1.1\r\nHost: {host}\r\n{head}\r\nConnection: close\r\n\r\n{body}"
        );
        let raw = raw_request(&proxy.url, &request).await;
        assert_eq!(
            raw_kind(&raw),
            (400, "malformed_request".to_owned()),
            "{head} -> {raw}"
        );
    }
    let request = format!(
        "GET http://{host}/mde/api/alerts HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    );
    let raw = raw_request(&proxy.url, &request).await;
    // In HTTP/1 the absolute form itself is refused, whatever its Host (an HTTP/2 :authority
    // against Host is malformed_request: screen's unit tests).
    assert_eq!(raw_kind(&raw), (400, "target_refused".to_owned()), "{raw}");
    // One chunked coding and one Host pass the screen (and then fail on the broken credential).
    let request = format!(
        "POST /mde/api/alerts HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
    );
    let raw = raw_request(&proxy.url, &request).await;
    assert_eq!(raw_kind(&raw).0 / 100, 5, "{raw}");
    assert_eq!(proxy.control().api_requests(), 0);
}

#[tokio::test]
async fn same_site_requests_are_refused_with_403_unless_their_origin_is_allowed() {
    // A page on another localhost port sends `Sec-Fetch-Site: same-site`, and no Origin on a
    // simple GET.
    let proxy = broken("allowed_origins = [\"https://tool.example\"]", "").await;
    let url = format!("{}/mde/api/alerts", proxy.url);
    let response = client()
        .get(&url)
        .header("sec-fetch-site", "same-site")
        .send()
        .await
        .unwrap();
    assert_eq!(kind(response).await, (403, "cross_site_request".to_owned()));
    // An allowed Origin gets through the screen (and then fails on the broken credential).
    let allowed = client()
        .get(&url)
        .header("sec-fetch-site", "same-site")
        .header("origin", "https://tool.example")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status().as_u16() / 100, 5);
    assert_eq!(proxy.control().api_requests(), 0);
}

#[tokio::test]
async fn the_admin_listener_refuses_foreign_hosts_and_browser_pages() {
    let proxy = broken("allowed_origins = [\"https://tool.example\"]", "").await;
    let status = format!("{}/-/status", proxy.admin_url);
    let port = proxy.admin_url.rsplit(':').next().unwrap().to_owned();
    // A DNS rebinding page: the admin listener's address under the attacker's name.
    let rebound = client()
        .get(&status)
        .header("host", format!("evil.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(kind(rebound).await, (403, "host_not_allowed".to_owned()));
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let page = client()
            .get(&status)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(
            kind(page).await,
            (403, "cross_site_request".to_owned()),
            "{name}: {value}"
        );
    }
    // curl: no Origin, Host the listener's address.
    let plain = client().get(&status).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    let allowed = client()
        .get(&status)
        .header("origin", "https://tool.example")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
}
