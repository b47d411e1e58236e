//! Screening rules, request by request.

use super::*;
use axum::body::Body;

fn screen() -> Screen {
    Screen::new(
        "127.0.0.1:8080".parse().unwrap(),
        &["proxy.internal".into()],
        &["https://tool.example".into()],
    )
}

fn request(target: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = http::Request::builder().uri(target);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

fn kind(result: Result<(), ProxyError>) -> &'static str {
    result.err().map_or("ok", |e| e.kind())
}

#[test]
fn loopback_and_configured_hosts_pass_and_others_are_refused() {
    let s = screen();
    for host in [
        "127.0.0.1:8080",
        "localhost:8080",
        "LOCALHOST:8080",
        "[::1]:8080",
        "proxy.internal",
        "proxy.internal:8080",
    ] {
        assert_eq!(
            kind(s.check(&request("/mde/api", &[("host", host)]))),
            "ok",
            "{host}"
        );
    }
    for host in [
        "evil.example:8080",
        "127.0.0.1:9999",
        "localhost",
        "127.0.0.1.nip.io:8080",
    ] {
        assert_eq!(
            kind(s.check(&request("/mde/api", &[("host", host)]))),
            "host_not_allowed",
            "{host}"
        );
    }
    assert_eq!(kind(s.check(&request("/mde/api", &[]))), "host_not_allowed");
}

#[test]
fn cross_site_browser_requests_are_refused_unless_their_origin_is_allowed() {
    let s = screen();
    let host = ("host", "127.0.0.1:8080");
    assert_eq!(
        kind(s.check(&request("/x", &[host, ("origin", "https://evil.example")]))),
        "cross_site_request"
    );
    assert_eq!(
        kind(s.check(&request("/x", &[host, ("origin", "null")]))),
        "cross_site_request"
    );
    assert_eq!(
        kind(s.check(&request("/x", &[host, ("sec-fetch-site", "cross-site")]))),
        "cross_site_request"
    );
    assert_eq!(
        kind(s.check(&request(
            "/x",
            &[
                host,
                ("origin", "https://tool.example"),
                ("sec-fetch-site", "cross-site")
            ]
        ))),
        "ok"
    );
    assert_eq!(
        kind(s.check(&request("/x", &[host, ("sec-fetch-site", "none")]))),
        "ok"
    );
}

#[test]
fn same_site_requests_are_refused_unless_their_origin_is_allowed() {
    // A page on another localhost port is same-site to the proxy, not same-origin.
    let s = screen();
    let host = ("host", "127.0.0.1:8080");
    for value in ["same-site", "Same-Site"] {
        assert_eq!(
            kind(s.check(&request("/x", &[host, ("sec-fetch-site", value)]))),
            "cross_site_request",
            "{value}"
        );
    }
    let allowed = [
        host,
        ("origin", "https://tool.example"),
        ("sec-fetch-site", "same-site"),
    ];
    assert_eq!(kind(s.check(&request("/x", &allowed))), "ok");
    assert_eq!(
        kind(s.check(&request("/x", &[host, ("sec-fetch-site", "same-origin")]))),
        "ok"
    );
}

#[test]
fn the_proxys_own_origin_passes_and_another_ports_is_refused() {
    // The console's POSTs carry its origin; a page on another port of the same host is another
    // origin.
    let s = screen();
    let host = ("host", "127.0.0.1:8080");
    for origin in [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
        "http://proxy.internal:8080",
    ] {
        let own = [host, ("origin", origin), ("sec-fetch-site", "same-origin")];
        assert_eq!(kind(s.check(&request("/mde/api", &own))), "ok", "{origin}");
    }
    for origin in [
        "http://127.0.0.1:9999",
        "http://localhost",
        "http://127.0.0.1",
    ] {
        let other = [host, ("origin", origin), ("sec-fetch-site", "same-site")];
        assert_eq!(
            kind(s.check(&request("/mde/api", &other))),
            "cross_site_request",
            "{origin}"
        );
        let unmarked = [host, ("origin", origin)];
        assert_eq!(
            kind(s.check(&request("/mde/api", &unmarked))),
            "cross_site_request",
            "{origin}"
        );
    }
}

#[test]
fn the_admin_screen_checks_origin_and_host_and_takes_ip_literals_when_unspecified() {
    let any = Screen::for_admin("0.0.0.0:9901".parse().unwrap(), &[], &[]);
    for host in ["10.1.2.3:9901", "[fd00::1]:9901", "127.0.0.1:9901"] {
        let plain = request("/-/status", &[("host", host)]);
        assert_eq!(kind(any.check_origin_and_host(&plain)), "ok", "{host}");
    }
    for host in ["evil.example:9901", "10.1.2.3:80", "10.1.2.3"] {
        let foreign = request("/-/status", &[("host", host)]);
        assert_eq!(
            kind(any.check_origin_and_host(&foreign)),
            "host_not_allowed",
            "{host}"
        );
    }
    let page = request(
        "/-/status",
        &[
            ("host", "10.1.2.3:9901"),
            ("origin", "https://evil.example"),
        ],
    );
    assert_eq!(kind(any.check_origin_and_host(&page)), "cross_site_request");
    // Bound to one address, it is screened as the main listener is.
    let one = Screen::for_admin("127.0.0.1:9901".parse().unwrap(), &[], &[]);
    let other = request("/-/status", &[("host", "10.1.2.3:9901")]);
    assert_eq!(kind(one.check_origin_and_host(&other)), "host_not_allowed");
}

#[test]
fn ambiguous_framing_is_refused_with_400() {
    let s = screen();
    let host = ("host", "127.0.0.1:8080");
    for headers in [
        &[host, host][..],
        &[host, ("host", "evil.example")],
        &[
            host,
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "chunked"),
        ],
        &[host, ("transfer-encoding", "chunked, Chunked")],
    ] {
        let error = s.check(&request("/mde/api", headers)).unwrap_err();
        assert_eq!(error.kind(), "malformed_request", "{headers:?}");
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
    }
    let mut h2 = request("http://127.0.0.1:8080/mde/api", &[("host", "evil.example")]);
    *h2.version_mut() = Version::HTTP_2;
    assert_eq!(kind(s.check(&h2)), "malformed_request");
    let mut h2 = request(
        "http://127.0.0.1:8080/mde/api",
        &[("host", "127.0.0.1:8080")],
    );
    *h2.version_mut() = Version::HTTP_2;
    assert_eq!(kind(s.check(&h2)), "ok");
    let chunked = [host, ("transfer-encoding", "chunked")];
    assert_eq!(kind(s.check(&request("/mde/api", &chunked))), "ok");
}

#[test]
fn methods_that_echo_the_request_are_refused_with_405_and_allow() {
    let s = screen();
    for method in ["TRACE", "TRACK", "trace", "Track"] {
        let mut request = request("/mde/api", &[("host", "127.0.0.1:8080")]);
        *request.method_mut() = Method::from_bytes(method.as_bytes()).unwrap();
        let error = s.check(&request).unwrap_err();
        assert_eq!(error.kind(), "method_refused", "{method}");
        let response = axum::response::IntoResponse::into_response(error);
        assert_eq!(response.status(), http::StatusCode::METHOD_NOT_ALLOWED);
        let allow = response.headers()[header::ALLOW].to_str().unwrap();
        assert!(allow.contains("GET") && !allow.contains("TRACE"), "{allow}");
    }
}

#[test]
fn targets_that_could_leave_the_route_are_refused() {
    for target in [
        "/mde/../graph/v1.0/me",
        "/mde/./api",
        "/mde/%2e%2e/graph",
        "/mde/%2E/api",
        "/mde/api%2Falerts",
        "/mde/api%2falerts",
        "/mde/api%5Calerts",
        "/mde/api\\alerts",
        "/mde/..",
    ] {
        assert_eq!(
            kind(check_target(
                &Method::GET,
                Version::HTTP_11,
                &target.parse().unwrap()
            )),
            "target_refused",
            "{target}"
        );
    }
    for target in [
        "/mde/api/alerts?$filter=a/../b",
        "/mde/api/..x/a",
        "/mde/api/%2e%2ex",
        "/mde/a%20b",
        "/mde/%25%32%46",
    ] {
        assert_eq!(
            kind(check_target(
                &Method::GET,
                Version::HTTP_11,
                &target.parse().unwrap()
            )),
            "ok",
            "{target}"
        );
    }
    let absolute: http::Uri = "http://evil.example/mde/api".parse().unwrap();
    assert_eq!(
        kind(check_target(&Method::GET, Version::HTTP_11, &absolute)),
        "target_refused"
    );
    assert_eq!(
        kind(check_target(&Method::GET, Version::HTTP_2, &absolute)),
        "ok"
    );
    assert_eq!(
        kind(check_target(
            &Method::CONNECT,
            Version::HTTP_11,
            &"/".parse().unwrap()
        )),
        "target_refused"
    );
}
