//! The device code flow (RFC 8628; <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code>):
//! `POST /{tenant}/oauth2/v2.0/devicecode`, the codes it hands out, and their redemption with
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code`.
//!
//! Nobody opens a browser here: tests play the user through `SimControl` (wait for a code, approve or decline it; with
//! the test hooks also expire it or make the next polls answer `slow_down`). Any registered client may ask for a code;
//! redeeming it authenticates the client like every grant, so a public client presents nothing and a confidential one
//! its credential.

use std::sync::Arc;
use std::sync::Mutex;
#[cfg(any(test, feature = "test-hooks"))]
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::Notify;

use super::SimState;
use super::entra_error::EntraError;
use super::request::{TokenRequest, parse_form};
use super::sync::lock;
use super::token::now_ms;
use super::user::{UserScope, first_refresh_token, random_string, user_token_response};

/// The value of `grant_type` that redeems a device code.
pub(super) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Letters of user codes: consonants only, so no word is spelled by accident (RFC 8628 §6.1).
const USER_CODE_LETTERS: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Every device code issued, and the switches tests use on them.
#[derive(Debug, Default)]
pub(super) struct DeviceCodes {
    codes: Mutex<Vec<DeviceCode>>,
    issued: Notify,
    /// Polls still to answer `slow_down` (a test switch).
    #[cfg(any(test, feature = "test-hooks"))]
    slow_down: AtomicU32,
}

#[derive(Debug)]
struct DeviceCode {
    device_code: String,
    user_code: String,
    client_key: String,
    tenant_id: String,
    scope: String,
    expires_ms: u64,
    state: CodeState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum CodeState {
    Pending,
    Approved {
        username: String,
    },
    Declined,
    /// `SimControl::expire_device_codes` (the lifetime passing is checked against `expires_ms`).
    #[cfg(any(test, feature = "test-hooks"))]
    Expired,
    Redeemed,
}

impl DeviceCode {
    fn awaits_user(&self, now: u64) -> bool {
        self.state == CodeState::Pending && now < self.expires_ms
    }
}

impl DeviceCodes {
    /// The user code of the newest code still waiting for the user, waiting until `deadline` for one to be issued.
    pub(super) async fn wait_for_pending(&self, deadline: Duration) -> Option<String> {
        let found = async {
            loop {
                // Register interest before looking, so a code issued in between is not missed.
                let issued = self.issued.notified();
                tokio::pin!(issued);
                issued.as_mut().enable();
                let now = now_ms();
                let newest = lock(&self.codes)
                    .iter()
                    .rev()
                    .find(|code| code.awaits_user(now))
                    .map(|code| code.user_code.clone());
                if let Some(user_code) = newest {
                    return user_code;
                }
                issued.await;
            }
        };
        tokio::time::timeout(deadline, found).await.ok()
    }

    /// Moves a code still waiting for the user (matched case-insensitively) to `state`; false if there is none.
    pub(super) fn decide(&self, user_code: &str, username: Option<String>) -> bool {
        let now = now_ms();
        let mut codes = lock(&self.codes);
        let Some(code) = codes
            .iter_mut()
            .find(|c| c.user_code.eq_ignore_ascii_case(user_code.trim()) && c.awaits_user(now))
        else {
            return false;
        };
        code.state = match username {
            Some(username) => CodeState::Approved { username },
            None => CodeState::Declined,
        };
        true
    }

    /// Every code not redeemed yet answers `expired_token` from now on.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn expire_all(&self) {
        for code in lock(&self.codes).iter_mut() {
            if matches!(code.state, CodeState::Pending | CodeState::Approved { .. }) {
                code.state = CodeState::Expired;
            }
        }
    }

    /// The next `polls` polls answer `slow_down`.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn set_slow_down(&self, polls: u32) {
        self.slow_down.store(polls, Ordering::SeqCst);
    }

    #[cfg(any(test, feature = "test-hooks"))]
    fn take_slow_down(&self) -> bool {
        self.slow_down
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn issue(&self, code: DeviceCode) {
        lock(&self.codes).push(code);
        self.issued.notify_waiters();
    }

    fn unique_user_code(&self) -> String {
        let codes = lock(&self.codes);
        loop {
            let random = uuid::Uuid::new_v4();
            let letters: String = random.as_bytes()[..8]
                .iter()
                .map(|b| char::from(USER_CODE_LETTERS[usize::from(*b) % USER_CODE_LETTERS.len()]))
                .collect();
            let user_code = format!("{}-{}", &letters[..4], &letters[4..]);
            if !codes.iter().any(|c| c.user_code == user_code) {
                return user_code;
            }
        }
    }

    /// One poll: the approving user's name and the scope once approved (the code is then spent), else the RFC 8628
    /// error the client acts on.
    fn poll(
        &self,
        request: &TokenRequest<'_>,
        device_code: &str,
    ) -> Result<(String, String), EntraError> {
        let now = now_ms();
        let mut codes = lock(&self.codes);
        let bad_code = || {
            EntraError::user_grant(
                "bad_verification_code",
                70000,
                "The provided value for the input parameter 'device_code' is not valid.",
            )
        };
        let code = codes
            .iter_mut()
            .find(|c| c.device_code == device_code)
            .filter(|c| {
                c.client_key == request.client.client_id.to_ascii_lowercase()
                    && c.tenant_id == request.tenant.id
            })
            .ok_or_else(bad_code)?;
        let expired = || {
            EntraError::user_grant(
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            )
        };
        match &code.state {
            CodeState::Redeemed => Err(EntraError::user_grant(
                "invalid_grant",
                54005,
                "The device code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            )),
            #[cfg(any(test, feature = "test-hooks"))]
            CodeState::Expired => Err(expired()),
            _ if now >= code.expires_ms => Err(expired()),
            CodeState::Declined => Err(EntraError::user_grant(
                "authorization_declined",
                70000,
                "The end user declined the authorization request.",
            )),
            CodeState::Pending => Err(EntraError::user_grant(
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )),
            CodeState::Approved { username } => {
                let approved = (username.clone(), code.scope.clone());
                code.state = CodeState::Redeemed;
                Ok(approved)
            }
        }
    }
}

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
    let (username, scope) = codes.poll(request, device_code)?;
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
