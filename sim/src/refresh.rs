//! Refresh tokens (<https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens>): opaque strings bound to
//! a client and a user, not to a resource or tenant, and the `refresh_token` grant.
//!
//! Every use rotates the token: the answer carries a new one and the old one is dead. Entra itself leaves old
//! tokens valid; the simulator is stricter so that a proxy which forgets to store the newest token is caught:
//! presenting a rotated-out token counts as reuse and revokes its whole family (the tokens descended from one
//! sign-in), as oidc-provider's reuse detection does.

use axum::response::Response;

use super::entra_error::EntraError;
use super::request::TokenRequest;
use super::user::{UserScope, user_token_response};

/// `grant_type=refresh_token`: a user token for the requested resource (any resource the simulator serves, in
/// the tenant of the path: the token is neither resource- nor tenant-bound) and the next refresh token.
pub(super) fn refresh(request: &TokenRequest<'_>) -> Result<Response, EntraError> {
    let token = request.required("refresh_token")?;
    let grant = request
        .state
        .control
        .refresh_tokens
        .redeem(token, &request.client.client_id)?;
    let user = request
        .state
        .directory
        .user(&grant.username)
        .ok_or_else(EntraError::grant_revoked)?;
    let scope = request.param("scope").unwrap_or(&grant.scope);
    let parsed = UserScope::parse(scope, &request.tenant.id)?;
    user_token_response(request, user, &parsed, Some(grant.next))
}

#[cfg(test)]
mod tests;
