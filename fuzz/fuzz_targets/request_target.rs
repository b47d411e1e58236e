//! A request from fuzz input goes through the screen; when the screen lets it pass, its route is
//! looked up and its upstream URI built as the proxy does. Invariants:
//! (a) the upstream URI has exactly the route upstream's scheme and authority (also after printing
//!     and parsing it again), and its path stays under the upstream's base path: a token never goes
//!     elsewhere;
//! (b) a request the screen lets pass has no "." or ".." segment and no encoded slash or backslash
//!     in its percent-decoded path.
//!
//! Input: newline-separated fields `VERSION\nMETHOD\nTARGET\nHOST\nORIGIN\nSEC-FETCH-SITE`
//! (VERSION `0` = HTTP/1.0, `2` = HTTP/2, `3` = HTTP/3, anything else HTTP/1.1; an empty HOST,
//! ORIGIN or SEC-FETCH-SITE field, or a missing one, sends no such header).

#![no_main]

#[path = "../common/mod.rs"]
mod common;

use std::sync::LazyLock;

use axum::body::Body;
use defender_token_proxy::route::Routes;
use defender_token_proxy::screen::Screen;
use http::{HeaderValue, Method, Request, Uri, Version, header};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode;

static FIXED: LazyLock<(Routes, Screen)> = LazyLock::new(common::routes_and_screen);

fuzz_target!(|data: &[u8]| {
    let (routes, screen) = &*FIXED;
    let mut fields = data.splitn(6, |&b| b == b'\n');
    let version = match fields.next() {
        Some(b"0") => Version::HTTP_10,
        Some(b"2") => Version::HTTP_2,
        Some(b"3") => Version::HTTP_3,
        _ => Version::HTTP_11,
    };
    let Ok(method) = Method::from_bytes(fields.next().unwrap_or(b"GET")) else {
        return;
    };
    let Ok(uri) = Uri::try_from(fields.next().unwrap_or(b"/")) else {
        return;
    };
    let mut request = Request::new(Body::empty());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    for name in [
        header::HOST,
        header::ORIGIN,
        "sec-fetch-site".try_into().unwrap(),
    ] {
        match fields.next() {
            None | Some(b"") => {}
            Some(value) => match HeaderValue::from_bytes(value) {
                Ok(value) => {
                    request.headers_mut().insert(name, value);
                }
                Err(_) => return,
            },
        }
    }

    if screen.check(&request).is_err() {
        return;
    }
    let uri = request.uri();
    let path = uri.path();
    assert_no_climbing(path);

    // What proxy::forward and proxy::forward_request do with it.
    let Some((route, matched, _)) = routes.find(path) else {
        return;
    };
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    assert!(
        target.is_char_boundary(matched) && route.split(&target[..matched]).is_some(),
        "the request target {target:?} (path {path:?}) does not start with its route's prefix {:?}",
        route.prefix
    );
    let rest = &target[matched..];
    let Ok(upstream_uri) = route.upstream.uri_for(rest) else {
        return; // 400 bad_target: nothing is sent.
    };

    let base = route.upstream.url();
    let scheme = base.scheme();
    let authority = base.authority();
    let base_path = base.path().trim_end_matches('/');
    let check = |uri: &Uri, how: &str| {
        assert_eq!(
            uri.scheme_str(),
            Some(scheme),
            "{how}: scheme of {uri} for {target:?}"
        );
        assert_eq!(
            uri.authority().map(|a| a.as_str()),
            Some(authority),
            "{how}: authority of {uri} for {target:?}"
        );
        let up_path = uri.path();
        assert!(
            up_path
                .strip_prefix(base_path)
                .is_some_and(|r| r.starts_with('/')),
            "{how}: path {up_path:?} of {uri} is not under the base path {base_path:?} (target {target:?})"
        );
    };
    check(&upstream_uri, "built");
    let printed = upstream_uri.to_string();
    let reparsed: Uri = printed
        .parse()
        .unwrap_or_else(|e| panic!("the upstream URI {printed:?} does not parse again: {e}"));
    check(&reparsed, "printed and parsed again");
});

/// Invariant (b), written independently of the screen: decode the whole path once and compare.
fn assert_no_climbing(path: &str) {
    let decoded: Vec<u8> = percent_decode(path.as_bytes()).collect();
    let raw_segments = path.split('/').count();
    let segments: Vec<&[u8]> = decoded.split(|&b| b == b'/').collect();
    assert_eq!(
        raw_segments,
        segments.len(),
        "the screen passed an encoded slash in {path:?}"
    );
    assert!(
        !decoded.contains(&b'\\'),
        "the screen passed a (possibly encoded) backslash in {path:?}"
    );
    for segment in segments {
        assert!(
            segment != b"." && segment != b"..",
            "the screen passed a dot-segment in {path:?}"
        );
    }
}
