//! The test hooks in front of the token endpoint and the managed-identity server: request counting and the
//! injected `EntraFault`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::control::EntraFault;
use super::entra_error::EntraError;
use super::request::is_form;
use crate::state::SimState;

/// The token endpoint's hooks, before anything else: counts the request, then applies the injected fault (`Some`
/// answers in place of the endpoint).
pub(super) async fn token_endpoint(
    state: &SimState,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    // Counted before faults and checks, so the per-tenant and per-grant counts add up to `token_requests`.
    let grant_type = is_form(headers)
        .then(|| url::form_urlencoded::parse(body).find(|(name, _)| name == "grant_type"))
        .flatten()
        .map(|(_, value)| value);
    state
        .control
        .record_token_request(state.directory.tenant_key(tenant), grant_type.as_deref());
    match state.control.fault() {
        None => None,
        Some(EntraFault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            None
        }
        Some(EntraFault::ServerError) => {
            Some(EntraError::server_error().into_response(&state.authority))
        }
        Some(EntraFault::Throttled { retry_after }) => {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            Some(EntraError::throttled(secs).into_response(&state.authority))
        }
        Some(EntraFault::MalformedJson) => {
            let content_type = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
            Some(
                (
                    StatusCode::OK,
                    content_type,
                    "<html><body>upstream connect error</body></html>",
                )
                    .into_response(),
            )
        }
        Some(EntraFault::RejectAll { code }) => {
            Some(EntraError::from_code(code).into_response(&state.authority))
        }
        Some(EntraFault::Answer(body)) => Some(json_answer(body)),
    }
}

/// 200 with `body` as JSON (`EntraFault::Answer`).
fn json_answer(body: String) -> Response {
    let content_type = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
    (StatusCode::OK, content_type, body).into_response()
}

/// The managed-identity server's hooks: counts the request, then applies the injected fault, answering in
/// that server's own error shape.
pub(super) async fn identity_server(
    State(state): State<Arc<SimState>>,
    request: Request,
    next: Next,
) -> Response {
    state.control.record_identity_request();
    let error = match state.control.fault() {
        None => return next.run(request).await,
        Some(EntraFault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            return next.run(request).await;
        }
        Some(EntraFault::Answer(body)) => return json_answer(body),
        Some(EntraFault::MalformedJson) => {
            let content_type = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
            return (
                StatusCode::OK,
                content_type,
                "<html><body>upstream connect error</body></html>",
            )
                .into_response();
        }
        Some(EntraFault::ServerError) => EntraError::server_error(),
        Some(EntraFault::Throttled { retry_after }) => {
            EntraError::throttled(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0))
        }
        Some(EntraFault::RejectAll { code }) => EntraError::from_code(code),
    };
    error.into_identity_response()
}
