//! Entra v2 token-endpoint errors: the AADSTS codes the simulator uses and the exact error body shape.
//!
//! Codes and `error` values follow the Microsoft Entra error-code reference; see `EntraError::from_code` for the
//! table used by `EntraFault::RejectAll`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::data::entra_timestamp;
use super::token::now_ms;

/// One error answer of the token endpoint.
#[derive(Debug, thiserror::Error)]
#[error("AADSTS{code}: {description}")]
pub(super) struct EntraError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
    retry_after_secs: Option<u64>,
}

impl EntraError {
    fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            code,
            description: description.into(),
            retry_after_secs: None,
        }
    }

    /// The AADSTS number.
    pub(super) fn code(&self) -> u32 {
        self.code
    }

    pub(super) fn tenant_not_found(tenant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the \
                 correct cloud. Check with your subscription administrator, this may happen if there are no active \
                 subscriptions for the tenant."
            ),
        )
    }

    pub(super) fn missing_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    pub(super) fn malformed_request(why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            9002313,
            format!("Invalid request. {why}"),
        )
    }

    pub(super) fn unsupported_grant_type(grant_type: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        )
    }

    pub(super) fn unknown_client(client_id: &str, tenant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen \
                 if the application has not been installed by the administrator of the tenant or consented to by any \
                 user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    pub(super) fn missing_credential() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    }

    /// A 400 of the user grants (RFC 6749 §5.2, RFC 8628 §3.5), whose `error` values say what the client should do
    /// next: `invalid_grant` (sign in again) or the device flow's `authorization_pending`, `slow_down`,
    /// `authorization_declined`, `expired_token`, `bad_verification_code`.
    pub(super) fn user_grant(
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, code, description)
    }

    /// AADSTS50126, the password grant's answer to a wrong user name or password.
    pub(super) fn invalid_credentials() -> Self {
        Self::user_grant(
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        )
    }

    /// AADSTS50173: the grant was revoked (password reset, `SimControl::revoke_refresh_tokens`).
    pub(super) fn grant_revoked() -> Self {
        Self::user_grant(
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might \
             have changed or reset their password.",
        )
    }

    /// The `error` value, for answers that travel in a redirect instead of a JSON body.
    pub(super) fn error(&self) -> &'static str {
        self.error
    }

    /// A public client presented a secret or an assertion (AADSTS700025,
    /// <https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes>).
    pub(super) fn public_client_with_credential() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        )
    }

    pub(super) fn invalid_secret(client_id: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret \
                 value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    }

    /// A client assertion was refused; `code` and `description` come from `AssertionRejection`.
    pub(super) fn invalid_assertion(code: u32, description: String) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        )
    }

    pub(super) fn invalid_scope(scope: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input \
                 parameter 'scope' is not valid. The scope {scope} is not valid. The scope must be a resource \
                 identifier followed by '/.default'."
            ),
        )
    }

    pub(super) fn multiple_resources() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            700022,
            "The provided value for the input parameter scope is not valid because it contains more than one resource. \
             Scope must be for a single resource.",
        )
    }

    pub(super) fn unknown_resource(resource: &str, tenant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen \
                 if the application has not been installed by the administrator of the tenant or consented to by any \
                 user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// `EntraFault::ServerError`: AADSTS90033 is Entra's transient "try again" service error.
    pub(super) fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
        )
    }

    /// `EntraFault::Throttled`: AADSTS90055 TenantThrottlingError, with `Retry-After`.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn throttled(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            90055,
            "TenantThrottlingError: There are too many incoming requests. Please try again later.",
        );
        error.retry_after_secs = Some(retry_after_secs);
        error
    }

    /// `EntraFault::RejectAll`: Entra's status and `error` value for well-known codes; anything else is a 400
    /// `invalid_request` with a generic description.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn from_code(code: u32) -> Self {
        let (status, error, description) = match code {
            7000215 => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Invalid client secret provided.",
            ),
            7000222 => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The provided client secret keys are expired.",
            ),
            700027 => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client assertion failed signature validation.",
            ),
            700024 => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client assertion is not within its valid time range.",
            ),
            7000218 => (
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ),
            700016 => (
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "Application was not found in the directory.",
            ),
            7000112 => (
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "Application is disabled.",
            ),
            90002 => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Tenant not found.",
            ),
            70011 => (
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "The provided value for the input parameter 'scope' is not valid.",
            ),
            700022 => (
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "The scope contains more than one resource.",
            ),
            500011 => (
                StatusCode::BAD_REQUEST,
                "invalid_resource",
                "The resource principal was not found in the tenant.",
            ),
            70003 => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The app requested an unsupported grant type.",
            ),
            65001 => (
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "The user or administrator has not consented to use the application.",
            ),
            53003 => (
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Access has been blocked by Conditional Access policies.",
            ),
            50196 => (
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "The server terminated an operation because it encountered a client request loop.",
            ),
            _ => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request was rejected by the simulator.",
            ),
        };
        Self::new(status, error, code, description)
    }
}

impl EntraError {
    /// The managed-identity endpoints' error body, `{error, error_description}`
    /// (<https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>),
    /// with this error's status and `Retry-After`.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn into_identity_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.to_string()});
        self.with_retry_after((self.status, Json(body)).into_response())
    }

    fn with_retry_after(&self, mut response: Response) -> Response {
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }

    /// The Entra v2 error body; `authority` is the simulator's root (for `error_uri`).
    pub(super) fn into_response(self, authority: &str) -> Response {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let timestamp = entra_timestamp(now_ms() / 1000);
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{authority}/error?code={}", self.code),
        });
        self.with_retry_after((self.status, Json(body)).into_response())
    }
}
