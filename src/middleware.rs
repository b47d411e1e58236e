//! The main listener's checks before any handler, each a thin step over its check that answers
//! its refusal itself (load shedding: the in-flight limit; screening: `screen`; API keys:
//! `inbound`), and the admin listener's screening layer.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;

use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::inbound;
use crate::live::{AppState, Live};
use crate::report::error_chain;
use crate::telemetry::RequestLog;

/// What a refusing check answers.
pub(crate) type Refusal = Box<http::Response<ProxyBody>>;

/// Sheds load: beyond `server.max_concurrent_requests` requests in flight, answer 503 at once
/// rather than queueing without bound. The caller holds the slot until the response body has been
/// sent, so that long downloads count (tower's concurrency limit releases when headers are ready).
pub(crate) fn shed(live: &Live, log: &RequestLog) -> Result<OwnedSemaphorePermit, Refusal> {
    live.in_flight.clone().try_acquire_owned().map_err(|_| {
        let error = ProxyError::Overloaded;
        log.span()
            .in_scope(|| tracing::warn!(kind = error.kind(), "request shed"));
        Box::new(error.response())
    })
}

/// Browser, Host and request-target checks.
pub(crate) fn screen(
    live: &Live,
    request: &http::Request<Incoming>,
    log: &RequestLog,
) -> Result<(), Refusal> {
    live.screen.check(request).map_err(|error| {
        log.span().in_scope(|| refused(&error));
        Box::new(error.response())
    })
}

/// Inbound API keys, when configured.
pub(crate) fn authenticate(
    state: &AppState,
    live: &Live,
    request: &mut http::Request<Incoming>,
    log: &RequestLog,
) -> Result<(), Refusal> {
    inbound::authenticate(&live.api_keys, request).map_err(|error| {
        state.no_route_metrics().response(401);
        log.span()
            .in_scope(|| tracing::info!(kind = error.kind(), "request refused"));
        Box::new(error.response())
    })
}

fn refused(error: &ProxyError) {
    tracing::info!(kind = error.kind(), error = %error_chain(error), "request refused");
}

/// The admin listener's browser and Host checks.
pub(crate) async fn screen_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let outcome = match &state.live().admin_screen {
        Some(screen) => screen.check_origin_and_host(&request),
        None => Ok(()),
    };
    match outcome {
        Ok(()) => next.run(request).await,
        Err(error) => {
            refused(&error);
            error.into_response()
        }
    }
}
