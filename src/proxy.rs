//! Forwarding: a request goes to its route's upstream with the route's token in place of any inbound
//! credentials, both bodies streamed, and hop-by-hop and cookie headers dropped both ways
//! (RFC 9110 section 7.6.1). On a route that rewrites links the upstream is asked for gzip, and
//! what it gzips is decoded as it streams where the links need it or the client cannot take it.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Extensions, StatusCode, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tracing::Span;

mod reply;

use crate::body::ProxyBody;
use crate::body_timeout::{IdleTimeout, idle_in};
use crate::encoding::accepts_gzip;
use crate::error::ProxyError;
use crate::headers::filter_request_headers;
use crate::live::{AppState, Live};
use crate::metrics::{BudgetEvent, RouteMetrics};
use crate::ratelimit::budgets::Budget;
use crate::ratelimit::{Admission, Refusal, parse_retry_after};
use crate::rewrite::Links;
use crate::route::{Route, Source, TENANT_HEADER};
use crate::telemetry::{Named, RequestLog, Routed};
use crate::token::AccessToken;

/// Forwards a request that is not for one of the proxy's own endpoints, with the configuration
/// `live` it runs with; `log` learns its route, credential and tenant.
pub(crate) async fn forward(
    state: &AppState,
    live: &Live,
    request: http::Request<Incoming>,
    log: &mut RequestLog,
) -> http::Response<ProxyBody> {
    let Some((route, matched, tenant)) = live.routes.find(request.uri().path()) else {
        return unknown_route(state, live, &log.span());
    };
    let (route, tenant) = (route.clone(), tenant.map(str::to_owned));
    let metrics = route.metrics(state.metrics());
    let matched = Matched {
        len: matched,
        tenant,
    };
    let response = match forward_request(state, live, &route, metrics, matched, request, log).await
    {
        Ok(response) => response,
        Err(error) => refuse(error, &log.span()),
    };
    metrics.response(response.status().as_u16());
    response
}

/// The answer to a path that no route's prefix matches.
pub(crate) fn unknown_route(
    state: &AppState,
    live: &Live,
    span: &Span,
) -> http::Response<ProxyBody> {
    state
        .no_route_metrics()
        .response(StatusCode::NOT_FOUND.as_u16());
    refuse(
        ProxyError::UnknownRoute {
            prefixes: live.routes.prefixes().to_vec(),
        },
        span,
    )
}

/// The same for a `/-/` path that is none of the proxy's endpoints (the endpoints' router's
/// fallback, in the request's span).
pub(crate) async fn unknown_endpoint(State(state): State<AppState>) -> axum::response::Response {
    unknown_route(&state, &state.live(), &Span::current()).map(Body::new)
}

/// Logs why the proxy answers a request itself (once, in the request's span) and answers.
fn refuse(error: ProxyError, span: &Span) -> http::Response<ProxyBody> {
    let cause = crate::report::error_chain(&error);
    span.in_scope(|| {
        if error.status().is_server_error() {
            tracing::warn!(kind = error.kind(), error = %cause, "request failed");
        } else {
            tracing::info!(kind = error.kind(), error = %cause, "request refused");
        }
    });
    error.response()
}

impl Named for Route {
    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn credential(&self) -> &str {
        &self.credential.name
    }
}

/// What of the request path the route's prefix matched.
struct Matched {
    /// Its length in bytes.
    len: usize,
    /// The value of its `{tenant}` segment, if it has one.
    tenant: Option<String>,
}

async fn forward_request(
    state: &AppState,
    live: &Live,
    route: &Arc<Route>,
    metrics: &RouteMetrics,
    matched: Matched,
    request: http::Request<Incoming>,
    log: &mut RequestLog,
) -> Result<http::Response<ProxyBody>, ProxyError> {
    let (mut parts, body) = request.into_parts();
    let source = route.source(matched.tenant.as_deref(), &parts.headers)?;
    log.routed(Routed {
        route: route.clone(),
        tenant: match &source {
            Source::Cache(key) => Some(key.tenant.clone()),
            Source::Static(_) => None,
        },
    });
    parts.headers.remove(&TENANT_HEADER);
    if let Some(access) = &route.access {
        let path = &parts.uri.path()[matched.len..];
        if !access.allows(&parts.method, path) {
            return Err(ProxyError::RouteForbids {
                prefix: route.prefix.clone(),
                method: parts.method.to_string(),
                path: path.to_owned(),
            });
        }
    }

    // The clock runs while the body waits on its client, so a client that goes quiet mid-body
    // frees its slot (buffered for replay or streamed alike).
    let body = if body.is_end_stream() {
        Body::new(body)
    } else {
        Body::new(IdleTimeout::new(body, live.body_read_timeout))
    };
    // A declared length over the route's limit is refused before anything else; a chunked body is
    // cut off when it passes the limit.
    let body = match route.max_body_bytes {
        Some(limit) if body.size_hint().lower() > limit => {
            return Err(ProxyError::BodyTooLarge { limit });
        }
        Some(limit) => Body::new(http_body_util::Limited::new(
            body,
            usize::try_from(limit).unwrap_or(usize::MAX),
        )),
        None => body,
    };
    // Client-side rate limits, and the hold after an upstream 429, on the budget of what
    // Microsoft counts (family, app, tenant): wait in the bounded queue, or 429 when that would
    // take too long. Before the token, so a refused request costs nothing.
    let budget = route.budget_in(&live.budgets, &source);
    let store = live.budgets.store();
    match budget.acquire(store.map(|s| &**s)).await {
        Ok(Admission::Immediate) => {}
        Ok(Admission::Waited(_)) => {
            metrics.rate_limit_wait();
            state
                .metrics()
                .budget_event(budget.label(), BudgetEvent::Wait);
        }
        Err(Refusal::TooLong { retry_after } | Refusal::QueueFull { retry_after }) => {
            metrics.rate_limit_refusal();
            state
                .metrics()
                .budget_event(budget.label(), BudgetEvent::Refusal);
            return Err(ProxyError::RateLimited {
                prefix: route.prefix.clone(),
                retry_after,
            });
        }
    }
    let token = token_for(state, live, route, &source).await?;

    // The proxy's own base URL as this client reached it (the screen has checked the host).
    let links = route.rewrite_links.then(|| {
        let host = parts
            .uri
            .authority()
            .map(http::uri::Authority::as_str)
            .or_else(|| {
                parts
                    .headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
            })
            .unwrap_or_default();
        // One allocation, where `format!` took two and the copies of the host a third.
        let mut base = String::with_capacity(live.scheme.len() + 3 + host.len());
        base.push_str(live.scheme);
        base.push_str("://");
        base.push_str(host);
        let links = Links::new(live.links.clone(), base);
        match matched.tenant.as_deref() {
            Some(tenant) => links.through(
                route.upstream.url().as_str().trim_end_matches('/'),
                route.concrete_prefix(Some(tenant)),
            ),
            None => links,
        }
    });
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = route
        .upstream
        .uri_for(&target[matched.len..])
        .map_err(ProxyError::BadTarget)?;
    // The pooled client picks HTTP/1.1 or HTTP/2 per connection; the inbound version is irrelevant.
    parts.version = Version::HTTP_11;
    parts.extensions = Extensions::new();
    // Rewriting needs the body's text. The upstream is asked for gzip, whatever the client asked
    // for (so the hop from Microsoft stays compressed), and what comes back gzipped is decoded
    // below; the client's own answer decides only what happens to bodies that are not rewritten.
    let client_gzip = links.is_some() && accepts_gzip(&parts.headers);
    filter_request_headers(&mut parts.headers);
    if links.is_some() {
        parts
            .headers
            .insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    }

    // A small body is buffered so that the request can be replayed once with a fresh token if the
    // upstream refuses this one (a token can be revoked before it expires). Reading it counts
    // against the upstream timeout, as the time to send a streamed body does.
    let deadline = Instant::now() + live.upstream_timeout;
    let (body, replay) = buffer_for_replay(body, live, deadline).await?;
    let replay = replay.map(|bytes| {
        (
            parts.method.clone(),
            parts.uri.clone(),
            parts.headers.clone(),
            bytes,
        )
    });
    parts
        .headers
        .insert(header::AUTHORIZATION, token.authorization());
    let mut response = send(live, metrics, Request::from_parts(parts, body), deadline)
        .await
        .map_err(|error| body_failure(error, route))?;
    // Never on 403: that is a permission the app lacks, which a new token does not grant. A 401
    // drops the token even when the request cannot be replayed, so the next one gets a fresh token.
    if response.status() == StatusCode::UNAUTHORIZED
        && let Source::Cache(key) = &source
        && state.tokens().invalidate(key, &token)
        && let Some((method, uri, mut headers, bytes)) = replay
    {
        let token = token_for(state, live, route, &source).await?;
        headers.insert(header::AUTHORIZATION, token.authorization());
        let mut request = Request::new(Body::from(bytes));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        log.span().in_scope(|| {
            tracing::info!("replaying the request once with a fresh token after an upstream 401");
        });
        let deadline = Instant::now() + live.upstream_timeout;
        response = send(live, metrics, request, deadline).await?;
    }
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        log.span()
            .in_scope(|| hold_after_429(state, live, &budget, response.headers()));
    }
    let (parts, body) = response.into_parts();
    Ok(reply::reply(parts, body, links, client_gzip, route, live, log).await)
}

async fn token_for(
    state: &AppState,
    live: &Live,
    route: &Route,
    source: &Source<'_>,
) -> Result<Arc<AccessToken>, ProxyError> {
    let key = match source {
        Source::Static(token) => return Ok(Arc::clone(token)),
        Source::Cache(key) => key,
    };
    state
        .tokens()
        .token_for(key, &route.credential, &live.entra)
        .await
        .map_err(|error| ProxyError::Token {
            credential: route.credential.name.clone(),
            tenant: key.tenant.clone(),
            error,
        })
}

/// After an upstream 429, the budget's requests (that app's in that tenant, on every route and,
/// with a store, every replica) wait until its Retry-After has passed, capped at
/// `server.retry_after_max` (Microsoft: "resubmitting in a shorter time frame gives a return of
/// the 429 error code", <https://learn.microsoft.com/en-us/defender-endpoint/api/common-errors>).
fn hold_after_429(state: &AppState, live: &Live, budget: &Budget, headers: &HeaderMap) {
    let Some(wait) = headers.get(header::RETRY_AFTER).and_then(|value| {
        parse_retry_after(value, std::time::SystemTime::now(), live.retry_after_max)
    }) else {
        return;
    };
    tracing::info!(
        budget = budget.label(),
        retry_after_s = wait.as_secs(),
        "upstream 429: holding the budget"
    );
    state
        .metrics()
        .budget_event(budget.label(), BudgetEvent::Hold);
    budget.hold(wait, live.budgets.store());
}

/// A request whose streamed body passed the route's limit, or whose client stopped sending it,
/// fails in the client (which aborts the upstream request); say which.
fn body_failure(error: ProxyError, route: &Route) -> ProxyError {
    let ProxyError::UpstreamUnreachable(cause) = &error else {
        return error;
    };
    if let Some(idle) = idle_in(cause) {
        return ProxyError::RequestBodyTimeout(idle);
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(cause);
    while let Some(e) = source {
        if let Some(limit) = route.max_body_bytes
            && e.is::<http_body_util::LengthLimitError>()
        {
            return ProxyError::BodyTooLarge { limit };
        }
        source = e.source();
    }
    error
}

/// Sends `request` upstream; its response headers must arrive by `deadline` (the upstream timeout).
async fn send(
    live: &Live,
    metrics: &RouteMetrics,
    request: Request,
    deadline: Instant,
) -> Result<http::Response<hyper::body::Incoming>, ProxyError> {
    let sent = Instant::now();
    let response = tokio::time::timeout_at(deadline.into(), live.client.request(request))
        .await
        .map_err(|_| ProxyError::UpstreamTimeout(live.upstream_timeout))?
        .map_err(ProxyError::UpstreamUnreachable)?;
    metrics.upstream_latency(sent.elapsed());
    Ok(response)
}

/// `body`, and a copy of it when its declared length is at most `replay_max_body_bytes` (an empty
/// body counts): what a replay needs. Longer or chunked bodies stream and are never replayed. A
/// client that stops sending, or has not sent it all by `deadline`, gets 408; nothing has gone
/// upstream yet.
async fn buffer_for_replay(
    body: Body,
    live: &Live,
    deadline: Instant,
) -> Result<(Body, Option<Bytes>), ProxyError> {
    match body.size_hint().exact() {
        Some(0) => Ok((Body::empty(), Some(Bytes::new()))),
        Some(length) if length <= live.replay_max_body_bytes as u64 => {
            let collected = tokio::time::timeout_at(deadline.into(), body.collect())
                .await
                .map_err(|_| ProxyError::RequestBodyTimeout(live.upstream_timeout))?;
            let bytes = match collected {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    return Err(match idle_in(&error) {
                        Some(idle) => ProxyError::RequestBodyTimeout(idle),
                        None => ProxyError::RequestBody(error),
                    });
                }
            };
            Ok((Body::from(bytes.clone()), Some(bytes)))
        }
        _ => Ok((body, None)),
    }
}
