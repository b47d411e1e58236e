//! The routers' middleware, each a thin layer over its check: load shedding (the in-flight
//! limit), screening (`screen`, on both listeners) and API keys (`inbound`). Each answers a refusal itself, so a
//! refused request reaches nothing after it.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::OwnedSemaphorePermit;

use crate::error::ProxyError;
use crate::inbound;
use crate::live::AppState;
use crate::report::error_chain;

/// Sheds load: beyond `server.max_concurrent_requests` requests in flight, answer 503 at once
/// rather than queueing without bound. The slot is held until the response body has been sent,
/// so that long downloads count (tower's concurrency limit releases when headers are ready).
pub(crate) async fn shed(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let in_flight = state.live().in_flight.clone();
    let Ok(slot) = in_flight.try_acquire_owned() else {
        let error = ProxyError::Overloaded;
        tracing::warn!(kind = error.kind(), "request shed");
        return error.into_response();
    };
    let (parts, body) = next.run(request).await.into_parts();
    Response::from_parts(parts, Body::new(Holding { body, _slot: slot }))
}

/// A body that keeps its in-flight slot until it is done.
struct Holding {
    body: Body,
    _slot: OwnedSemaphorePermit,
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Browser, Host and request-target checks.
pub(crate) async fn screen(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let outcome = state.live().screen.check(&request);
    refuse_or_run(outcome, request, next).await
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
    refuse_or_run(outcome, request, next).await
}

async fn refuse_or_run(outcome: Result<(), ProxyError>, request: Request, next: Next) -> Response {
    match outcome {
        Ok(()) => next.run(request).await,
        Err(error) => {
            tracing::info!(kind = error.kind(), error = %error_chain(&error), "request refused");
            error.into_response()
        }
    }
}

/// Inbound API keys, when configured.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let outcome = inbound::authenticate(&state.live().api_keys, &mut request);
    match outcome {
        Ok(()) => next.run(request).await,
        Err(error) => {
            state.no_route_metrics().response(401);
            tracing::info!(kind = error.kind(), "request refused");
            error.into_response()
        }
    }
}
