//! What goes into an access token (app or user:
//! <https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference>) and the token endpoint's
//! success body (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>); shared
//! by every grant and by the managed-identity server.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::directory::DirectoryUser;
use super::entra_error::EntraError;
use super::token::{AccessClaims, now_ms};
use crate::state::SimState;

/// Who a token is for.
pub(super) struct Subject<'a> {
    /// The client (or managed identity) id: the `appid` claim.
    pub(super) appid: &'a str,
    pub(super) appidacr: &'static str,
    pub(super) principal: Principal<'a>,
}

/// The security principal a token acts as.
pub(super) enum Principal<'a> {
    /// The app itself (client credentials, managed identity): `oid` is its service principal, `roles` the
    /// configured roles.
    App { oid: &'a str },
    /// A signed-in user: `scp` holds the user's consented permissions.
    User(&'a DirectoryUser),
}

/// A signed access token and its times.
pub(super) struct Minted {
    pub(super) access_token: String,
    pub(super) lifetime: Duration,
    /// Unix seconds of `nbf` and `exp`.
    pub(super) not_before: u64,
    pub(super) expires_on: u64,
}

/// Signs an access token for `resource` in tenant `tenant_id`, living `SimControl::token_lifetime`.
pub(super) fn mint(
    state: &SimState,
    tenant_id: &str,
    resource: &str,
    subject: &Subject<'_>,
) -> Result<Minted, EntraError> {
    let lifetime = state.control.token_lifetime();
    let now = now_ms();
    let sim_exp_ms = now.saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX));
    let (oid, roles, scp, upn, name, idtyp) = match &subject.principal {
        Principal::App { oid } => (*oid, state.roles.clone(), None, None, None, "app"),
        Principal::User(user) => {
            let username = &user.user.username;
            let display = username.split('@').next().unwrap_or(username).to_owned();
            (
                user.oid.as_str(),
                Vec::new(),
                Some(user.user.scopes.join(" ")),
                Some(username.clone()),
                Some(display),
                "user",
            )
        }
    };
    let claims = AccessClaims {
        aud: resource.to_owned(),
        iss: format!("https://sts.windows.net/{tenant_id}/"),
        tid: tenant_id.to_owned(),
        appid: subject.appid.to_owned(),
        appidacr: subject.appidacr.to_owned(),
        roles,
        scp,
        upn,
        name,
        idtyp: idtyp.to_owned(),
        ver: "1.0".to_owned(),
        oid: oid.to_owned(),
        sub: oid.to_owned(),
        uti: uuid::Uuid::new_v4().simple().to_string(),
        iat: now / 1000,
        nbf: now / 1000,
        exp: sim_exp_ms / 1000,
        sim_exp_ms,
        sim_gen: state.control.generation(),
    };
    let access_token = state
        .keys
        .issue(&claims)
        .map_err(|_| EntraError::server_error())?;
    Ok(Minted {
        access_token,
        lifetime,
        not_before: claims.nbf,
        expires_on: claims.exp,
    })
}

/// A duration in whole seconds (at least 1), as a number or, with `numbers_as_strings`, a string.
pub(super) fn seconds(state: &SimState, duration: Duration) -> Value {
    let secs = duration.as_secs().max(1);
    if state.numbers_as_strings {
        Value::String(secs.to_string())
    } else {
        json!(secs)
    }
}

/// The v2 success body: `token_type`, `expires_in`, `ext_expires_in`, `access_token`, `refresh_in` when configured,
/// then `extra` (a user grant's `scope`, `refresh_token`, `id_token`). Entra marks it uncacheable.
pub(super) fn token_response(
    state: &SimState,
    minted: Minted,
    extra: Map<String, Value>,
) -> Response {
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": seconds(state, minted.lifetime),
        "ext_expires_in": seconds(state, minted.lifetime),
        "access_token": minted.access_token,
    });
    if let Some(refresh_in) = state.refresh_in {
        body["refresh_in"] = seconds(state, refresh_in);
    }
    if let Value::Object(fields) = &mut body {
        fields.extend(extra);
    }
    let no_store = [
        (header::CACHE_CONTROL, "no-store, no-cache"),
        (header::PRAGMA, "no-cache"),
    ];
    (StatusCode::OK, no_store, axum::Json(body)).into_response()
}
