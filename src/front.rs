//! `Front`, the main listener's service: every request in one pass, with the live configuration
//! loaded once: sensitive headers marked, the audit record started, load shedding, screening, the
//! console's page (before API keys), API keys, then the proxy's own `/-/` endpoints (an axum
//! router) or forwarding; the audit line and the console's ring when the response head is ready.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use http::{HeaderMap, HeaderName, Request, Response, header};
use hyper::body::Incoming;
use tower::ServiceExt;
use tracing::Instrument;

use crate::body::ProxyBody;
use crate::console::{self, Recent};
use crate::inbound;
use crate::live::{AppState, Live};
use crate::middleware::{self, Refusal};
use crate::proxy;
use crate::telemetry::RequestLog;

/// Headers whose values no log line may show, marked before anything could log them (hyper's and
/// h2's own debug output of a request's headers included, which honours the mark).
const SENSITIVE: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    inbound::API_KEY_HEADER,
];

/// The main listener's service; cloning it is cheap.
#[derive(Clone)]
pub(crate) struct Front {
    inner: Arc<Inner>,
    /// The caller's address, given to the `/-/` endpoints (`/-/identity` logs it); forwarded
    /// requests never carry it, so that they need no extension map.
    peer: Option<SocketAddr>,
}

struct Inner {
    state: AppState,
    recent: Recent,
    /// The console's page and assets, served without an API key.
    page: Router,
    /// The proxy's own endpoints under `/-/`, behind the API keys.
    endpoints: Router,
}

impl Front {
    /// The service over `state`, with the routers of the page and of the `/-/` endpoints (their
    /// state already in them) and the ring the console reads.
    pub(crate) fn new(state: AppState, recent: Recent, page: Router, endpoints: Router) -> Self {
        Self {
            inner: Arc::new(Inner {
                state,
                recent,
                page,
                endpoints,
            }),
            peer: None,
        }
    }

    /// The service for one connection, from `peer`.
    pub(crate) fn for_peer(&self, peer: SocketAddr) -> Self {
        Self {
            inner: self.inner.clone(),
            peer: Some(peer),
        }
    }
}

impl tower::Service<Request<Incoming>> for Front {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let (inner, peer) = (self.inner.clone(), self.peer);
        Box::pin(async move { Ok(inner.handle(request, peer).await) })
    }
}

impl Inner {
    async fn handle(
        &self,
        mut request: Request<Incoming>,
        peer: Option<SocketAddr>,
    ) -> Response<ProxyBody> {
        mark_sensitive(request.headers_mut());
        let live = self.state.live();
        // The endpoints' handlers log in the request span, so theirs is made at once.
        let own = request.uri().path().starts_with("/-/");
        let mut log = RequestLog::start(request.method(), request.uri(), own);
        let response = match log.eager_span().cloned() {
            Some(span) => {
                self.respond(&live, request, peer, &mut log)
                    .instrument(span)
                    .await
            }
            None => self.respond(&live, request, peer, &mut log).await,
        };
        // One reading of each clock for the console's ring and the audit line.
        let (at, latency) = (SystemTime::now(), log.started().elapsed());
        self.recent.note(
            log.method(),
            log.path(),
            response.status().as_u16(),
            at,
            latency,
        );
        log.finish(&response, at, latency);
        response
    }

    /// The checks in order, then the endpoint or forwarding; the in-flight slot goes with the body.
    async fn respond(
        &self,
        live: &Live,
        mut request: Request<Incoming>,
        peer: Option<SocketAddr>,
        log: &mut RequestLog,
    ) -> Response<ProxyBody> {
        let slot = match middleware::shed(live, log) {
            Ok(slot) => slot,
            Err(refusal) => return *refusal,
        };
        let response = match self.checked(live, &mut request, log) {
            Ok(Some(router)) => {
                if let Some(peer) = peer {
                    request.extensions_mut().insert(ConnectInfo(peer));
                }
                call(router, request).await
            }
            Ok(None) => proxy::forward(&self.state, live, request, log).await,
            Err(refusal) => *refusal,
        };
        response.map(|body| body.holding(slot))
    }

    /// Screening and API keys: a refusal, or the router that answers (`None`: forwarding).
    fn checked(
        &self,
        live: &Live,
        request: &mut Request<Incoming>,
        log: &RequestLog,
    ) -> Result<Option<&Router>, Refusal> {
        middleware::screen(live, request, log)?;
        // The page holds no data, and a browser loads it without a key.
        if console::is_page(request.uri().path()) {
            return Ok(Some(&self.page));
        }
        middleware::authenticate(&self.state, live, request, log)?;
        Ok(request
            .uri()
            .path()
            .starts_with("/-/")
            .then_some(&self.endpoints))
    }
}

/// Calls an axum router (its state already in it).
async fn call(router: &Router, request: Request<Incoming>) -> Response<ProxyBody> {
    match router.clone().oneshot(request).await {
        Ok(response) => response.map(ProxyBody::boxed),
        Err(never) => match never {},
    }
}

/// Marks the values of [`SENSITIVE`] headers, every value of each: one pass over the few headers
/// a request has, where a lookup per sensitive name hashed each of them.
fn mark_sensitive(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if SENSITIVE.contains(name) {
            value.set_sensitive(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_of_the_credential_headers_is_marked_sensitive_and_nothing_else() {
        let mut headers = HeaderMap::new();
        headers.append(header::AUTHORIZATION, "Bearer one".parse().unwrap());
        headers.append(header::AUTHORIZATION, "Bearer two".parse().unwrap());
        headers.insert(header::PROXY_AUTHORIZATION, "Basic x".parse().unwrap());
        headers.insert(header::COOKIE, "session=1".parse().unwrap());
        headers.insert(inbound::API_KEY_HEADER, "key".parse().unwrap());
        headers.insert(header::ACCEPT, "application/json".parse().unwrap());
        mark_sensitive(&mut headers);
        for (name, value) in &headers {
            assert_eq!(value.is_sensitive(), name != header::ACCEPT, "{name}");
        }
        assert!(!format!("{headers:?}").contains("Bearer"));
    }
}
