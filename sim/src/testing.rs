//! `/_sim/*` endpoints, mounted on every API server (behind its token check), for proxy behaviour tests:
//! request echo, large streamed bodies, slow answers, arbitrary status codes, redirects, hop-by-hop headers, gzip
//! bodies (whole and broken), and `whoami` (who the token check let in).

use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Json};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::json;

use super::export;
use super::server::{ApiServer, Caller, error};

/// Size of each chunk `/_sim/bytes` sends.
const CHUNK: usize = 64 * 1024;

/// One chunk of the byte pattern (byte `i` of a body is `i % 256`). `CHUNK` is a multiple of 256, so every chunk
/// is a cheap clone of this one buffer.
static PATTERN: LazyLock<Bytes> =
    LazyLock::new(|| (0..=255u8).cycle().take(CHUNK).collect::<Vec<u8>>().into());

mod gzip;

/// The test routes; merged into each API server's router.
pub(super) fn routes() -> Router<Arc<ApiServer>> {
    Router::new()
        .route("/_sim/echo", any(echo))
        .route("/_sim/echo/{*rest}", any(echo))
        .route("/_sim/bytes", get(bytes))
        .route("/_sim/count", post(count))
        .route("/_sim/slow", get(slow))
        .route("/_sim/status/{code}", get(status))
        .route("/_sim/redirect", get(redirect))
        .route("/_sim/headers", get(headers))
        .route("/_sim/links", get(export::links))
        .route("/_sim/whoami", get(whoami))
        .route("/_sim/gzip/{kind}", get(gzip::body))
}

/// The caller the token check let in: the scheme and, for a bearer token, the claims that tell app from user
/// tokens and tenants apart.
async fn whoami(Extension(caller): Extension<Caller>) -> Response {
    let body = match caller {
        Caller::ApiToken => json!({"scheme": "Token"}),
        Caller::Bearer(claims) => json!({
            "scheme": "Bearer",
            "tid": claims.tid,
            "oid": claims.oid,
            "appid": claims.appid,
            "idtyp": claims.idtyp,
            "roles": claims.roles,
            "scp": claims.scp,
            "upn": claims.upn,
        }),
    };
    Json(body).into_response()
}

/// What the server received: method, raw request target, every header, and the body length.
async fn echo(State(server): State<Arc<ApiServer>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers: Vec<[String; 2]> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            [
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ]
        })
        .collect();
    let Ok(body_len) = body_length(body).await else {
        return error(
            server.api,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body could not be read.",
        );
    };
    let uri = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    Json(json!({"method": parts.method.as_str(), "uri": uri, "headers": headers, "body_len": body_len})).into_response()
}

#[derive(Deserialize)]
struct SizeQuery {
    size: u64,
    /// Reset the connection after this many bytes (a fault).
    reset_after: Option<u64>,
}

/// Streams `size` pattern bytes without holding them in memory.
async fn bytes(
    State(server): State<Arc<ApiServer>>,
    Query(SizeQuery { size, reset_after }): Query<SizeQuery>,
) -> Response {
    let control = server.sim.control.clone();
    control.stream_opened();
    let body = PatternBody {
        remaining: size,
        reset_at: reset_after.map(|after| size.saturating_sub(after)),
        control,
    };
    let mut response = Body::new(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    response
}

/// Consumes the request body as a stream and reports its length.
async fn count(State(server): State<Arc<ApiServer>>, body: Body) -> Response {
    match body_length(body).await {
        Ok(bytes) => Json(json!({"bytes": bytes})).into_response(),
        Err(_) => error(
            server.api,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body could not be read.",
        ),
    }
}

#[derive(Deserialize)]
struct SlowQuery {
    ms: u64,
}

async fn slow(Query(SlowQuery { ms }): Query<SlowQuery>) -> Response {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Json(json!({"slept_ms": ms})).into_response()
}

/// Answers with the requested status; a 429 also carries `Retry-After: 7`.
async fn status(State(server): State<Arc<ApiServer>>, Path(code): Path<u16>) -> Response {
    let Some(status) = StatusCode::from_u16(code)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()))
    else {
        return error(
            server.api,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The status must be between 200 and 599.",
        );
    };
    // These statuses must not carry a body.
    if matches!(code, 204 | 205 | 304) {
        return status.into_response();
    }
    let mut response = (
        status,
        Json(json!({"status": code, "reason": status.canonical_reason()})),
    )
        .into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
    }
    response
}

/// 302 to this server's own echo endpoint, as an absolute URL.
async fn redirect(State(server): State<Arc<ApiServer>>) -> Response {
    let location = format!("{}/_sim/echo", server.root);
    match HeaderValue::try_from(location) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Response headers a proxy must filter (hop-by-hop, and one named by `Connection`) next to ones it must keep.
async fn headers() -> Response {
    let mut response = Json(json!({"headers": "sent"})).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("set-cookie", "a=b"),
        ("connection", "x-hop-extra"),
        ("x-hop-extra", "1"),
        ("keep-alive", "timeout=5"),
        ("proxy-authenticate", "Basic"),
        ("x-kept", "yes"),
    ] {
        headers.append(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

async fn body_length(mut body: Body) -> Result<u64, axum::Error> {
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            total += data.len() as u64;
        }
    }
    Ok(total)
}

/// A body of `remaining` pattern bytes with an exact size hint, so hyper sends `Content-Length`.
struct PatternBody {
    remaining: u64,
    /// When `remaining` falls to this, the body fails: the connection is reset mid-body.
    reset_at: Option<u64>,
    control: Arc<crate::control::SimControl>,
}

impl Drop for PatternBody {
    fn drop(&mut self) {
        self.control.stream_closed();
    }
}

impl http_body::Body for PatternBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        if self.reset_at.is_some_and(|at| self.remaining <= at) {
            return Poll::Ready(Some(Err(std::io::Error::other("simulated reset"))));
        }
        let limit = self
            .reset_at
            .map_or(self.remaining, |at| self.remaining - at);
        let len = usize::try_from(limit).map_or(CHUNK, |limit| limit.min(CHUNK));
        self.remaining -= len as u64;
        Poll::Ready(Some(Ok(Frame::data(PATTERN.slice(..len)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::super::test_support::{access_token, http};
    use super::super::{Sim, SimOptions};

    #[tokio::test]
    async fn sim_bytes_streams_the_announced_length_of_pattern_bytes() {
        let sim = Sim::start(SimOptions::default()).await.expect("sim");
        let token = access_token(&sim, "https://api.security.microsoft.com/.default").await;
        let size: u64 = 3 * 64 * 1024 + 123;
        let url = format!("{}/_sim/bytes?size={size}", sim.xdr());
        let response = http()
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.content_length(), Some(size));
        let mut stream = response.bytes_stream();
        let mut offset = 0u64;
        while let Some(chunk) = stream.next().await {
            for byte in chunk.expect("chunk") {
                assert_eq!(u64::from(byte), offset % 256, "byte {offset}");
                offset += 1;
            }
        }
        assert_eq!(offset, size);
    }

    #[tokio::test]
    async fn sim_echo_returns_the_raw_request_target_headers_and_body_length() {
        let sim = Sim::start(SimOptions::default()).await.expect("sim");
        let token = access_token(&sim, "https://graph.microsoft.com/.default").await;
        let url = format!(
            "{}/_sim/echo/a%2Fb/c?$filter=x%20eq%20%27y%27&q=1+2",
            sim.graph()
        );
        let response = http()
            .put(url)
            .bearer_auth(&token)
            .header("x-custom", "v")
            .body("hello")
            .send()
            .await
            .expect("send");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["method"], "PUT");
        assert_eq!(
            body["uri"],
            "/_sim/echo/a%2Fb/c?$filter=x%20eq%20%27y%27&q=1+2"
        );
        assert_eq!(body["body_len"], 5);
        let headers = body["headers"].as_array().expect("headers");
        assert!(headers.iter().any(|h| h[0] == "x-custom" && h[1] == "v"));
        assert!(
            headers
                .iter()
                .any(|h| h[0] == "authorization" && h[1] == format!("Bearer {token}"))
        );
    }

    #[tokio::test]
    async fn sim_count_and_status_and_redirect_behave_as_documented() {
        let sim = Sim::start(SimOptions::default()).await.expect("sim");
        let token = access_token(&sim, "https://api.securitycenter.microsoft.com/.default").await;
        let root = sim.mde();
        let counted: serde_json::Value = http()
            .post(format!("{root}/_sim/count"))
            .bearer_auth(&token)
            .body(vec![7u8; 200_000])
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(counted["bytes"], 200_000);
        let throttled = http()
            .get(format!("{root}/_sim/status/429"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        assert_eq!(
            (
                throttled.status().as_u16(),
                throttled.headers()["retry-after"].to_str().ok()
            ),
            (429, Some("7"))
        );
        let redirect = http()
            .get(format!("{root}/_sim/redirect"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        assert_eq!(redirect.status().as_u16(), 302);
        assert_eq!(
            redirect.headers()["location"],
            format!("{root}/_sim/echo").as_str()
        );
    }
}
