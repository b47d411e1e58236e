//! Header filtering: what must not cross the proxy in either direction (hop-by-hop headers, the
//! client's credentials and cookies, `Host`), removed in one pass over the headers present.

use http::header::{self, HeaderMap, HeaderName};

/// Hop-by-hop headers (RFC 9110 section 7.6.1, plus the de-facto `Keep-Alive` and
/// `Proxy-Connection`), which belong to one connection and are never forwarded.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Dropped from requests besides the hop-by-hop headers: `Host` (the client sets the upstream's),
/// every inbound `Authorization` (all of them: a second one must not survive, as in
/// GHSA-43wx-8qmj-9r9q) and cookies.
const REQUEST_ONLY: [HeaderName; 3] = [header::HOST, header::AUTHORIZATION, header::COOKIE];
/// Present on every response the proxy makes itself (never on a forwarded one); its value is the
/// error's kind. Defined here, below `error`, because the response filter drops it too.
pub(crate) const ERROR_HEADER: HeaderName = HeaderName::from_static("x-token-proxy-error");
/// Dropped from responses besides the hop-by-hop headers: cookies, and an upstream's
/// `x-token-proxy-error`, so that the header tells the proxy's own answers apart.
const RESPONSE_ONLY: [HeaderName; 2] = [header::SET_COOKIE, ERROR_HEADER];

/// Drops what must not reach the upstream: hop-by-hop headers, `Host`, every `Authorization` and
/// cookies.
pub fn filter_request_headers(headers: &mut HeaderMap) {
    remove_hop_by_hop(headers, &REQUEST_ONLY);
}

/// Drops what must not reach the client: hop-by-hop headers, cookies and `x-token-proxy-error`.
pub fn filter_response_headers(headers: &mut HeaderMap) {
    remove_hop_by_hop(headers, &RESPONSE_ONLY);
}

/// One pass over the headers present (a request has a handful; checking each of a dozen names
/// with a hashed lookup cost more than forwarding's own work, measured with callgrind), noting the
/// fixed names found in a bit set: no allocation unless `Connection` names other headers.
fn remove_hop_by_hop(headers: &mut HeaderMap, also: &[HeaderName]) {
    let mut present = 0u32;
    for name in headers.keys() {
        if let Some(i) = fixed_position(name.as_str().as_bytes(), also) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // Headers named in Connection are hop-by-hop too (RFC 9110 section 7.6.1). Bytes, not text: a
    // value with a non-UTF-8 byte still names the headers it lists (found by the `headers` fuzz
    // target). Bit 0 is Connection. A fixed name it lists (`keep-alive`, the usual one) goes
    // anyway when present, so only the others are collected.
    let mut named = Vec::new();
    if present & 1 != 0 {
        let tokens = headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|token| fixed_position(token, also).is_none());
        named.extend(tokens.filter_map(|token| HeaderName::from_bytes(token).ok()));
    }
    for (i, name) in HOP_BY_HOP.iter().chain(also).enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    for name in named {
        headers.remove(name);
    }
}

/// The position of the lower-case header name `name` among `HOP_BY_HOP` and then `also`: a `match`
/// on the text, so that a header costs one comparison rather than one per fixed name.
fn fixed_position(name: &[u8], also: &[HeaderName]) -> Option<usize> {
    Some(match name {
        b"connection" => 0,
        b"keep-alive" => 1,
        b"proxy-connection" => 2,
        b"proxy-authenticate" => 3,
        b"proxy-authorization" => 4,
        b"te" => 5,
        b"trailer" => 6,
        b"transfer-encoding" => 7,
        b"upgrade" => 8,
        _ => {
            return also
                .iter()
                .position(|a| a.as_str().as_bytes() == name)
                .map(|j| HOP_BY_HOP.len() + j);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn request_filter_drops_credentials_cookies_host_and_hop_by_hop_headers() {
        let mut h = headers(&[
            ("authorization", "Bearer client-one"),
            ("authorization", "Bearer client-two"),
            ("proxy-authorization", "Basic x"),
            ("cookie", "a=b"),
            ("host", "127.0.0.1:8080"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("accept", "application/json"),
            ("x-ms-client-request-id", "abc"),
        ]);
        filter_request_headers(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x-ms-client-request-id"]);
    }

    #[test]
    fn the_fixed_names_are_found_at_their_place_in_the_lists() {
        for (i, name) in HOP_BY_HOP.iter().chain(&REQUEST_ONLY).enumerate() {
            assert_eq!(
                fixed_position(name.as_str().as_bytes(), &REQUEST_ONLY),
                Some(i),
                "{name}"
            );
        }
        assert_eq!(fixed_position(b"accept", &REQUEST_ONLY), None);
        assert_eq!(
            fixed_position(b"Keep-Alive", &[]),
            None,
            "names are lower case"
        );
    }

    #[test]
    fn a_connection_value_with_a_non_utf8_byte_still_names_its_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_bytes(b"x-a, \xff").unwrap(),
        );
        h.insert("x-a", HeaderValue::from_static("1"));
        filter_request_headers(&mut h);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn response_filter_drops_set_cookie_and_connection_named_headers() {
        let mut h = headers(&[
            ("set-cookie", "a=b"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("proxy-authenticate", "Basic"),
            ("content-type", "application/json"),
            ("retry-after", "7"),
        ]);
        filter_response_headers(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "retry-after"]);
    }

    #[test]
    fn response_filter_drops_an_upstream_x_token_proxy_error() {
        assert_eq!(ERROR_HEADER, crate::error::ERROR_HEADER);
        let mut h = headers(&[
            ("x-token-proxy-error", "token_rejected"),
            ("content-type", "application/json"),
        ]);
        filter_response_headers(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["content-type"]);
        for (i, name) in HOP_BY_HOP.iter().chain(&RESPONSE_ONLY).enumerate() {
            assert_eq!(
                fixed_position(name.as_str().as_bytes(), &RESPONSE_ONLY),
                Some(i)
            );
        }
    }
}
