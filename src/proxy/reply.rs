//! What goes back to the client: the upstream's response with its hop-by-hop and cookie headers
//! dropped, its body decoded where the links or the client need it, and its links rewritten.

use axum::body::Body;
use futures_util::TryStreamExt;
use http::HeaderMap;
use http::header;
use http_body::Body as _;
use hyper::body::Incoming;

use crate::body::ProxyBody;
use crate::encoding::{Coding, gunzip};
use crate::headers::filter_response_headers;
use crate::live::Live;
use crate::rewrite::{Links, Rewritten};
use crate::route::Route;
use crate::telemetry::{RequestLog, Spanner};

/// The response to send for the upstream's `parts` and `body`; `links` on a rewriting route,
/// `client_gzip` whether the client takes gzip.
pub(super) async fn reply(
    mut parts: http::response::Parts,
    body: Incoming,
    links: Option<Links>,
    client_gzip: bool,
    route: &Route,
    live: &Live,
    log: &RequestLog,
) -> http::Response<ProxyBody> {
    filter_response_headers(&mut parts.headers);
    let Some(links) = links else {
        return http::Response::from_parts(parts, ProxyBody::upstream(body));
    };
    if let Some(location) = parts
        .headers
        .get(header::LOCATION)
        .and_then(|l| links.location(l))
    {
        parts.headers.insert(header::LOCATION, location);
    }
    // What the body needs, by its coding (the proxy asked for gzip only):
    // - none: JSON is rewritten, anything else passes as it came;
    // - gzip: JSON is decoded and rewritten; anything else is decoded only for a client that did
    //   not accept gzip, and passes compressed, with its Content-Encoding, to one that did;
    // - any other (br, identity spelled out, several codings): passes untouched, never rewritten.
    // A decoded body loses its Content-Encoding and Content-Length, and goes out chunked.
    let json = is_json(&parts.headers);
    match Coding::of(&parts.headers) {
        Coding::Identity if json => links
            .response(parts, body, live.upstream_timeout)
            .await
            .map(rewritten),
        // Nothing to decode without a body (HEAD, 204, 304, an empty one).
        Coding::Gzip if (json || !client_gzip) && !body.is_end_stream() => {
            parts.headers.remove(header::CONTENT_ENCODING);
            parts.headers.remove(header::CONTENT_LENGTH);
            let body = decoded(body, route, log.spanner());
            if json {
                return links
                    .response(parts, body, live.upstream_timeout)
                    .await
                    .map(rewritten);
            }
            http::Response::from_parts(parts, ProxyBody::boxed(body))
        }
        Coding::Other if json => {
            tracing::debug!(
                route = %route.prefix,
                "a JSON body in a coding the proxy cannot decode: its links are left as they are"
            );
            http::Response::from_parts(parts, ProxyBody::upstream(body))
        }
        Coding::Identity | Coding::Gzip | Coding::Other => {
            http::Response::from_parts(parts, ProxyBody::upstream(body))
        }
    }
}

/// A rewritten body as the main listener sends it: a whole one as it is, without boxing it.
fn rewritten(body: Rewritten) -> ProxyBody {
    match body {
        Rewritten::Whole(bytes) => ProxyBody::full(bytes),
        Rewritten::Streaming(body) => ProxyBody::boxed(body),
    }
}

/// The gzip `body` of a response on `route`, decoded as it streams. If it does not decode (or stops
/// arriving), the response ends with that error after what decoded before it, so the client sees a
/// cut-off body, never a whole-looking one; logged once.
fn decoded(body: Incoming, route: &Route, request: Spanner) -> Body {
    let prefix = route.prefix.clone();
    let mut failed = false;
    Body::from_stream(gunzip(body).inspect_err(move |error| {
        if !std::mem::replace(&mut failed, true) {
            request.span().in_scope(|| {
                tracing::warn!(
                    route = %prefix,
                    error = %crate::report::error_chain(error),
                    "the upstream's gzip body did not decode: the response is cut off"
                );
            });
        }
    }))
}

/// Whether the body is JSON (`application/json`, or a `+json` type).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            let t = t.trim().as_bytes();
            t.eq_ignore_ascii_case(b"application/json")
                || t.len()
                    .checked_sub(b"+json".len())
                    .is_some_and(|start| t[start..].eq_ignore_ascii_case(b"+json"))
        })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn json_is_recognised_by_its_media_type_or_a_json_suffix_in_any_case() {
        let json = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            is_json(&headers)
        };
        assert!(json("application/json"));
        assert!(json("Application/JSON; charset=utf-8"));
        assert!(json("application/problem+json"));
        assert!(json("application/VND.MS+JSON ; odata=minimal"));
        assert!(!json("text/plain"));
        assert!(!json("application/jsonl"));
        assert!(!json("json"));
        assert!(!json("+jso"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
