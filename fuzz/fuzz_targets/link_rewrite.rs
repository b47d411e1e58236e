//! `Links::rewrite_chunks` with the fixed configuration's link table. Invariants:
//! - the output is the same however the body is cut into chunks (compared with one chunk, and
//!   with one byte per chunk for some inputs);
//! - a body that contains no upstream base URL (plain or with JSON-escaped slashes) comes out
//!   unchanged;
//! - a link value that starts with an upstream base URL ending at a URL boundary (`/`, `?`, `#`,
//!   `"`, `\` or the end) is rewritten, and `Links::location` on the same bytes (when they are a
//!   header value without `"` or `\`) agrees with the rewriting of `{"nextLink":"<bytes>"}`;
//! - the same bytes as the value of a member that is not a link come out unchanged.
//!
//! Input: byte 0: the number of cuts (low 3 bits; bit 7: also compare with one byte per chunk),
//! then two bytes per cut (the position, modulo the body's length + 1), then the body.

#![no_main]

#[path = "../common/mod.rs"]
mod common;

use std::sync::{Arc, LazyLock};

use defender_token_proxy::rewrite::{LinkTable, Links};
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;

struct Fixed {
    links: Links,
    /// Every pattern the table rewrites: each upstream base, plain and JSON-escaped.
    patterns: Vec<Vec<u8>>,
}

static FIXED: LazyLock<Fixed> = LazyLock::new(|| {
    let (routes, _) = common::routes_and_screen();
    let links = Links::new(Arc::new(LinkTable::new(&routes)), common::PROXY_BASE);
    let patterns = common::upstream_bases(&routes)
        .into_iter()
        .flat_map(|base| [base.replace('/', "\\/").into_bytes(), base.into_bytes()])
        .collect();
    Fixed { links, patterns }
});

fuzz_target!(|data: &[u8]| {
    let Fixed { links, patterns } = &*FIXED;
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let cuts = usize::from(head & 0x07);
    let bytewise = head & 0x80 != 0;
    if rest.len() < 2 * cuts {
        return;
    }
    let (cut_bytes, body) = rest.split_at(2 * cuts);
    let mut points: Vec<usize> = cut_bytes
        .chunks(2)
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])) % (body.len() + 1))
        .collect();
    points.push(0);
    points.push(body.len());
    points.sort_unstable();
    let chunks: Vec<&[u8]> = points.windows(2).map(|w| &body[w[0]..w[1]]).collect();

    let whole = links.rewrite_chunks([body]);
    let chunked = links.rewrite_chunks(chunks.iter().copied());
    assert!(
        whole == chunked,
        "chunking changed the output\n  chunks: {chunks:?}\n  whole:   {:?}\n  chunked: {:?}",
        String::from_utf8_lossy(&whole),
        String::from_utf8_lossy(&chunked)
    );
    if bytewise {
        let bytes = links.rewrite_chunks(body.chunks(1));
        assert!(
            whole == bytes,
            "one byte per chunk changed the output\n  whole: {:?}\n  bytes: {:?}",
            String::from_utf8_lossy(&whole),
            String::from_utf8_lossy(&bytes)
        );
    }

    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    if !patterns.iter().any(|p| contains(body, p)) {
        assert!(
            whole == body,
            "a body without upstream links changed: {:?} -> {:?}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(&whole)
        );
    }

    // Only link values change: the body as a link's value is rewritten as `Location` is; as any
    // other member's value it passes untouched.
    if !body.iter().any(|b| matches!(b, b'"' | b'\\')) {
        let wrap = |name: &str, value: &[u8]| {
            [format!("{{\"{name}\":\"").as_bytes(), value, b"\"}"].concat()
        };
        let other = wrap("description", body);
        assert!(
            links.rewrite_chunks([&other[..]]) == other,
            "a value that is not a link changed: {:?}",
            String::from_utf8_lossy(body)
        );
        if let Ok(value) = HeaderValue::from_bytes(body) {
            let location = links.location(&value);
            let rewritten = location.as_ref().map_or(body, HeaderValue::as_bytes);
            let as_link = links.rewrite_chunks([&wrap("nextLink", body)[..]]);
            assert!(
                as_link == wrap("nextLink", rewritten),
                "Location and link value rewriting disagree: {:?} -> {:?} / {:?}",
                String::from_utf8_lossy(body),
                String::from_utf8_lossy(&as_link),
                location
            );
            for pattern in patterns {
                let left = as_link.windows(pattern.len()).position(|w| w == &pattern[..]);
                let prefix = b"{\"nextLink\":\"".len();
                if left == Some(prefix)
                    && matches!(
                        as_link.get(prefix + pattern.len()),
                        Some(b'/' | b'?' | b'#' | b'"')
                    )
                {
                    panic!(
                        "a link to an upstream was left in place: {:?}",
                        String::from_utf8_lossy(&as_link)
                    );
                }
            }
        }
    }
});
