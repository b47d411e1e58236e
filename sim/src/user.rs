//! What the user grants share: their scope parameter, the user-token answer with its optional refresh and ID tokens,
//! and the password grant (ROPC, <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth-ropc>), the
//! simplest of them.

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::directory::DirectoryUser;
use super::entra_error::EntraError;
use super::issue::{Principal, Subject, mint, token_response};
use super::request::TokenRequest;
use super::token::Api;

/// The OpenID Connect scopes that may accompany the one resource's permissions.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "offline_access", "email"];

/// A user grant's `scope`: exactly one resource, with `/.default` or named permissions, plus OIDC scopes.
#[derive(Debug)]
pub(super) struct UserScope {
    pub(super) resource: String,
    /// The OIDC scopes asked for, lower-cased.
    oidc: Vec<String>,
}

impl UserScope {
    /// Parses `scope`; the resource must be one the simulator serves (else AADSTS500011 naming `tenant`).
    pub(super) fn parse(scope: &str, tenant: &str) -> Result<Self, EntraError> {
        let mut resource: Option<&str> = None;
        let mut oidc = Vec::new();
        for item in scope.split_whitespace() {
            if let Some(known) = OIDC_SCOPES.iter().find(|s| s.eq_ignore_ascii_case(item)) {
                oidc.push((*known).to_owned());
                continue;
            }
            let (this, _permission) = item
                .rsplit_once('/')
                .filter(|(r, p)| !r.is_empty() && !p.is_empty())
                .ok_or_else(|| EntraError::invalid_scope(item))?;
            let this = this.trim_end_matches('/');
            match resource {
                Some(seen) if !seen.eq_ignore_ascii_case(this) => {
                    return Err(EntraError::multiple_resources());
                }
                _ => resource = Some(this),
            }
        }
        let resource = resource.ok_or_else(|| EntraError::invalid_scope(scope))?;
        if Api::from_resource(resource).is_none() {
            return Err(EntraError::unknown_resource(resource, tenant));
        }
        Ok(Self {
            resource: resource.to_owned(),
            oidc,
        })
    }

    /// Whether the client asked for a refresh token.
    pub(super) fn offline_access(&self) -> bool {
        self.oidc.iter().any(|s| s == "offline_access")
    }

    fn openid(&self) -> bool {
        self.oidc.iter().any(|s| s == "openid")
    }
}

/// A new refresh-token family for `user`, if the scope asked for `offline_access`
/// (<https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens>).
pub(super) fn first_refresh_token(
    request: &TokenRequest<'_>,
    user: &DirectoryUser,
    scope: &str,
    parsed: &UserScope,
) -> Option<String> {
    parsed.offline_access().then(|| {
        request.state.control.refresh_tokens.issue(
            &request.client.client_id,
            &user.user.username,
            scope,
        )
    })
}

/// The success answer of a user grant: a user token for the scope's resource in the request's tenant, the granted
/// `scope`, `refresh_token` when given, and an `id_token` when `openid` was asked for.
pub(super) fn user_token_response(
    request: &TokenRequest<'_>,
    user: &DirectoryUser,
    scope: &UserScope,
    refresh_token: Option<String>,
) -> Result<Response, EntraError> {
    let TokenRequest {
        state,
        tenant,
        client,
        ..
    } = request;
    let subject = Subject {
        appid: &client.client_id,
        appidacr: client.credential.appidacr(),
        principal: Principal::User(user),
    };
    let minted = mint(state, &tenant.id, &scope.resource, &subject)?;
    let granted: Vec<String> = user
        .user
        .scopes
        .iter()
        .map(|permission| format!("{}/{permission}", scope.resource))
        .chain(scope.oidc.iter().cloned())
        .collect();
    let mut extra = Map::new();
    extra.insert("scope".to_owned(), json!(granted.join(" ")));
    if let Some(refresh_token) = refresh_token {
        extra.insert("refresh_token".to_owned(), json!(refresh_token));
    }
    if scope.openid() {
        let id_claims = json!({
            "aud": client.client_id, "iss": format!("{}/{}/v2.0", state.authority, tenant.id),
            "iat": minted.not_before, "nbf": minted.not_before, "exp": minted.expires_on, "sub": user.oid, "oid": user.oid,
            "tid": tenant.id, "preferred_username": user.user.username, "ver": "2.0",
        });
        let id_token = state
            .keys
            .issue(&id_claims)
            .map_err(|_| EntraError::server_error())?;
        extra.insert("id_token".to_owned(), Value::String(id_token));
    }
    Ok(token_response(state, minted, extra))
}

/// `grant_type=password`: the user's name and password, checked against the directory.
pub(super) fn password(request: &TokenRequest<'_>) -> Result<Response, EntraError> {
    let username = request.required("username")?;
    let password = request.required("password")?;
    let scope = request.required("scope")?;
    let user = request
        .state
        .directory
        .user(username)
        .filter(|u| u.user.password == password)
        .ok_or_else(EntraError::invalid_credentials)?;
    let parsed = UserScope::parse(scope, &request.tenant.id)?;
    let refresh_token = first_refresh_token(request, user, scope, &parsed);
    user_token_response(request, user, &parsed, refresh_token)
}

#[cfg(test)]
mod tests;
