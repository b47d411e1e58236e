//! `filter_request_headers` and `filter_response_headers` on arbitrary header maps. Invariants:
//! after the request filter no credential, cookie, `Host` or hop-by-hop header is left; after the
//! response filter no `Set-Cookie` or hop-by-hop header; after either, no header named in an input
//! `Connection` value (RFC 9110 section 7.6.1) is left, and every other header is kept with all its
//! values in order.
//!
//! Input: lines `name:value` (optional whitespace after the colon); lines that are not a valid
//! header are skipped.

#![no_main]

use std::collections::HashSet;

use defender_token_proxy::headers::{filter_request_headers, filter_response_headers};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// Hop-by-hop: never forwarded either way.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
/// Dropped from requests besides the hop-by-hop headers.
const REQUEST_ONLY: [&str; 3] = ["authorization", "cookie", "host"];
/// Dropped from responses besides the hop-by-hop headers.
const RESPONSE_ONLY: [&str; 1] = ["set-cookie"];

fuzz_target!(|data: &[u8]| {
    let mut input = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let Ok(name) = HeaderName::from_bytes(&line[..colon]) else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii_start();
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        if input.try_append(name, value).is_err() {
            return;
        }
    }

    // The names the input's Connection values list: comma-separated tokens with optional
    // whitespace (RFC 9110 sections 5.6.1 and 7.6.1), whatever other bytes a value holds.
    let connection_named: HashSet<HeaderName> = input
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .filter_map(|token| HeaderName::from_bytes(token.trim_ascii()).ok())
        .collect();

    let mut request = input.clone();
    filter_request_headers(&mut request);
    verify(
        &input,
        &request,
        &connection_named,
        &REQUEST_ONLY,
        "request",
    );

    let mut response = input.clone();
    filter_response_headers(&mut response);
    verify(
        &input,
        &response,
        &connection_named,
        &RESPONSE_ONLY,
        "response",
    );
});

fn verify(
    input: &HeaderMap,
    output: &HeaderMap,
    connection_named: &HashSet<HeaderName>,
    also_dropped: &[&str],
    direction: &str,
) {
    for name in HOP_BY_HOP.iter().chain(also_dropped) {
        assert!(
            !output.contains_key(*name),
            "{direction} filter left {name}: {:?}",
            output.get_all(*name).iter().collect::<Vec<_>>()
        );
    }
    for name in connection_named {
        assert!(
            !output.contains_key(name),
            "{direction} filter left {name}, which Connection names: {:?}",
            input.get_all(header::CONNECTION).iter().collect::<Vec<_>>()
        );
    }
    for name in input.keys() {
        let dropped = HOP_BY_HOP.contains(&name.as_str())
            || also_dropped.contains(&name.as_str())
            || connection_named.contains(name);
        if !dropped {
            assert!(
                input.get_all(name).iter().eq(output.get_all(name).iter()),
                "{direction} filter changed {name}"
            );
        }
    }
    for name in output.keys() {
        assert!(input.contains_key(name), "{direction} filter added {name}");
    }
}
