//! The authorization code flow with PKCE and a loopback redirect
//! (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>): `GET
//! /{tenant}/oauth2/v2.0/authorize`, which signs a user in at once, and `grant_type=authorization_code`.
//!
//! There is no login page: the user named by `login_hint` (else the first configured user) approves at once and the
//! answer is the 302 back to the redirect URI. Problems Entra cannot safely redirect for (unknown tenant or
//! client, a redirect URI that is not loopback) answer a 400 page; the others travel in the redirect.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::entra_error::EntraError;
use super::request::TokenRequest;
use super::sync::lock;
use super::token::now_ms;
use super::user::{UserScope, first_refresh_token, user_token_response};
use crate::random::random_string;
use crate::state::{AuthCode, Credential, SimState};

/// "Typically, they expire after about 10 minutes" (the authorization code flow page, above).
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// `GET /{tenant}/oauth2/v2.0/authorize`.
pub(super) async fn authorize(
    State(state): State<Arc<SimState>>,
    Path(tenant_name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let page = |error: EntraError| {
        (
            StatusCode::BAD_REQUEST,
            Html(format!(
                "<html><body><p>{}</p></body></html>",
                escape(&error.to_string())
            )),
        )
            .into_response()
    };
    let Some(tenant) = state.directory.tenant(&tenant_name) else {
        return page(EntraError::tenant_not_found(&tenant_name));
    };
    let client_id = param("client_id").unwrap_or_default();
    let Some(client) = state.clients.get(&client_id.to_ascii_lowercase()) else {
        return page(EntraError::unknown_client(client_id, &tenant_name));
    };
    let redirect_uri = param("redirect_uri").unwrap_or_default();
    let Some(redirect) = loopback(redirect_uri) else {
        return page(EntraError::user_grant(
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs \
                 configured for the application. Only loopback http URIs are registered."
            ),
        ));
    };
    let back = |params: &[(&str, &str)]| {
        let mut location = redirect.clone();
        location.query_pairs_mut().extend_pairs(params);
        if let Some(state) = param("state") {
            location.query_pairs_mut().append_pair("state", state);
        }
        (
            StatusCode::FOUND,
            [(header::LOCATION, location.to_string())],
        )
            .into_response()
    };
    let refuse = |error: EntraError| {
        back(&[
            ("error", error.error()),
            ("error_description", &error.to_string()),
        ])
    };
    if param("response_type") != Some("code") {
        return refuse(EntraError::user_grant(
            "unsupported_response_type",
            700054,
            "The response_type must be 'code'.",
        ));
    }
    let Some(scope) = param("scope") else {
        return refuse(EntraError::missing_parameter("scope"));
    };
    if let Err(error) = UserScope::parse(scope, &tenant.id) {
        return refuse(error);
    }
    let challenge = param("code_challenge");
    if challenge.is_none() && matches!(client.credential, Credential::Public) {
        return refuse(EntraError::user_grant(
            "invalid_request",
            9002325,
            "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
        ));
    }
    if challenge.is_some() && param("code_challenge_method") != Some("S256") {
        return refuse(EntraError::user_grant(
            "invalid_request",
            50148,
            "The code_challenge_method must be 'S256'.",
        ));
    }
    let user = match param("login_hint") {
        Some(hint) => state.directory.user(hint),
        None => state.directory.first_user(),
    };
    let Some(user) = user else {
        return refuse(EntraError::user_grant(
            "invalid_request",
            50034,
            "The user account does not exist in the directory.",
        ));
    };
    let code = random_string(48);
    lock(&state.auth_codes.codes).insert(
        code.clone(),
        AuthCode {
            client_key: client.client_id.to_ascii_lowercase(),
            tenant_id: tenant.id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            challenge: challenge.map(str::to_owned),
            scope: scope.to_owned(),
            username: user.user.username.clone(),
            issued_ms: now_ms(),
            redeemed: false,
        },
    );
    back(&[("code", &code)])
}

/// The page echoes request parameters: HTML-escape them.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The redirect URI if it is a loopback `http` URL on `localhost` or `127.0.0.1`, any port (RFC 8252).
fn loopback(redirect_uri: &str) -> Option<url::Url> {
    let url = url::Url::parse(redirect_uri).ok()?;
    let host_ok = matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
    (url.scheme() == "http" && host_ok && url.fragment().is_none()).then_some(url)
}

/// `grant_type=authorization_code`: redeems a code once, checking the redirect URI and the PKCE verifier.
pub(super) fn redeem(request: &TokenRequest<'_>) -> Result<Response, EntraError> {
    let code = request.required("code")?;
    let redirect_uri = request.required("redirect_uri")?;
    let invalid = |why: &str| {
        EntraError::user_grant(
            "invalid_grant",
            70000,
            format!("Provided grant is invalid or malformed. {why}"),
        )
    };
    let (username, scope) = {
        let mut codes = lock(&request.state.auth_codes.codes);
        let found = codes
            .get_mut(code)
            .filter(|c| {
                c.client_key == request.client.client_id.to_ascii_lowercase()
                    && c.tenant_id == request.tenant.id
            })
            .ok_or_else(|| {
                invalid("The authorization code is not known to this client and tenant.")
            })?;
        if found.redeemed {
            return Err(EntraError::user_grant(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        let lifetime_ms = u64::try_from(CODE_LIFETIME.as_millis()).unwrap_or(u64::MAX);
        if now_ms() >= found.issued_ms.saturating_add(lifetime_ms) {
            return Err(EntraError::user_grant(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity.",
            ));
        }
        if found.redirect_uri != redirect_uri {
            return Err(invalid(
                "The redirect_uri differs from the one of the authorization request.",
            ));
        }
        if let Some(challenge) = &found.challenge {
            let verifier = request.param("code_verifier").unwrap_or_default();
            if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != *challenge {
                return Err(EntraError::user_grant(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                ));
            }
        }
        found.redeemed = true;
        (found.username.clone(), found.scope.clone())
    };
    let user = request
        .state
        .directory
        .user(&username)
        .ok_or_else(EntraError::grant_revoked)?;
    let authorized = UserScope::parse(&scope, &request.tenant.id)?;
    let asked = request.param("scope").unwrap_or(&scope);
    let parsed = UserScope::parse(asked, &request.tenant.id)?;
    // Consent to offline_access was given at the authorize step, so either scope may carry it.
    let refresh_token = first_refresh_token(request, user, &scope, &authorized)
        .or_else(|| first_refresh_token(request, user, asked, &parsed));
    user_token_response(request, user, &parsed, refresh_token)
}

#[cfg(test)]
mod tests;
