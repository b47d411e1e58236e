//! What only the Defender for Cloud Apps server does: its alerts list, paged by `skip`/`limit` (in the query or the
//! body), and its legacy API token, `Authorization: Token <key>`, accepted on every endpoint
//! (<https://learn.microsoft.com/en-us/defender-cloud-apps/api-tokens-legacy>).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::server::{ApiServer, Caller, error};
use super::token::TokenRejection;

/// MDCA's default and maximum `limit` for API-token callers.
const MDCA_MAX_LIMIT: usize = 100;

/// The caller of an `Authorization: Token <key>` request (`None` for any other scheme): known keys pass, others are
/// refused like an invalid bearer token.
pub(super) fn api_token(
    server: &ApiServer,
    authorization: Option<&[u8]>,
) -> Option<Result<Caller, TokenRejection>> {
    let (_, key) = authorization
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("token"))?;
    let key = key.trim();
    Some(
        if server.sim.mdca_api_tokens.iter().any(|known| known == key) {
            Ok(Caller::ApiToken)
        } else {
            Err(TokenRejection::UnknownApiToken)
        },
    )
}

pub(super) async fn alerts_get(
    State(server): State<Arc<ApiServer>>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let mut request = json!({});
    for (name, value) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        if let ("skip" | "limit", Ok(n)) = (name.as_ref(), value.parse::<u64>()) {
            request[name.as_ref()] = json!(n);
        }
    }
    page(&server, &request)
}

pub(super) async fn alerts_post(State(server): State<Arc<ApiServer>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(if body.is_empty() { b"{}" } else { &body }) {
        Ok(request) if request.is_object() => page(&server, &request),
        _ => error(
            server.api,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Request body must be a JSON object.",
        ),
    }
}

/// MDCA pages with `skip`/`limit` in the body and answers `{total, hasNext, data}`: nothing to rewrite.
fn page(server: &ApiServer, request: &Value) -> Response {
    let alerts = &server.sim.data.mdca_alerts;
    let number = |name: &str, default: usize| {
        request[name]
            .as_u64()
            .map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    let skip = number("skip", 0).min(alerts.len());
    let end = skip
        .saturating_add(number("limit", MDCA_MAX_LIMIT).clamp(1, MDCA_MAX_LIMIT))
        .min(alerts.len());
    Json(json!({"total": alerts.len(), "hasNext": end < alerts.len(), "data": &alerts[skip..end]}))
        .into_response()
}
