//! The device code flow (RFC 8628; <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code>):
//! `POST /{tenant}/oauth2/v2.0/devicecode`, the codes it hands out, and their redemption with
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code`.
//!
//! Nobody opens a browser here: tests play the user through `SimControl` (wait for a code, approve or decline it; with
//! the test hooks also expire it or make the next polls answer `slow_down`). Any registered client may ask for a code;
//! redeeming it authenticates the client like every grant, so a public client presents nothing and a confidential one
//! its credential.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::entra_error::EntraError;
use super::request::{TokenRequest, parse_form};
use super::token::now_ms;
use super::user::{UserScope, first_refresh_token, user_token_response};
use crate::device_codes::{CodeState, DeviceCode};
use crate::random::random_string;
use crate::state::SimState;

/// The value of `grant_type` that redeems a device code.
pub(super) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /{tenant}/oauth2/v2.0/devicecode`: a new code for `client_id` and `scope` (checked like a user grant's).
pub(super) async fn device_code(
    State(state): State<Arc<SimState>>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match start(&state, &tenant_name, &headers, &body) {
        Ok(response) => response,
        Err(err) => err.into_response(&state.authority),
    }
}

fn start(
    state: &SimState,
    tenant_name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, EntraError> {
    let tenant = state
        .directory
        .tenant(tenant_name)
        .ok_or_else(|| EntraError::tenant_not_found(tenant_name))?;
    let form = parse_form(headers, body)?;
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let client_id = param("client_id").ok_or_else(|| EntraError::missing_parameter("client_id"))?;
    let client = state
        .clients
        .get(&client_id.to_ascii_lowercase())
        .ok_or_else(|| EntraError::unknown_client(client_id, tenant_name))?;
    let scope = param("scope").ok_or_else(|| EntraError::missing_parameter("scope"))?;
    UserScope::parse(scope, &tenant.id)?;
    let codes = &state.control.device_codes;
    let user_code = codes.unique_user_code();
    let device_code = random_string(48);
    let lifetime_ms = u64::try_from(state.device_code_lifetime.as_millis()).unwrap_or(u64::MAX);
    let verification_uri = format!("{}/devicelogin", state.authority);
    let message = format!(
        "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
    );
    let body = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "expires_in": state.device_code_lifetime.as_secs(),
        "interval": state.device_code_interval.as_secs(),
        "message": message,
    });
    codes.issue(DeviceCode {
        device_code,
        user_code,
        client_key: client.client_id.to_ascii_lowercase(),
        tenant_id: tenant.id.clone(),
        scope: scope.to_owned(),
        expires_ms: now_ms().saturating_add(lifetime_ms),
        state: CodeState::Pending,
    });
    Ok(Json(body).into_response())
}

/// The device code grant: a poll, answered with the user's token once the user approved.
pub(super) fn redeem(request: &TokenRequest<'_>) -> Result<Response, EntraError> {
    let codes = &request.state.control.device_codes;
    #[cfg(any(test, feature = "test-hooks"))]
    if codes.take_slow_down() {
        return Err(EntraError::user_grant(
            "slow_down",
            70016,
            "OAuth 2.0 device flow error. The client is polling too often; increase the interval by 5 seconds.",
        ));
    }
    let device_code = request.required("device_code")?;
    let client_key = request.client.client_id.to_ascii_lowercase();
    let (username, scope) = codes.poll(&client_key, &request.tenant.id, device_code)?;
    let user = request
        .state
        .directory
        .user(&username)
        .ok_or_else(EntraError::grant_revoked)?;
    let parsed = UserScope::parse(&scope, &request.tenant.id)?;
    let refresh_token = first_refresh_token(request, user, &scope, &parsed);
    user_token_response(request, user, &parsed, refresh_token)
}

#[cfg(test)]
mod tests;
