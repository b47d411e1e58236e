//! The simulated Entra v2 token endpoint, `POST /{tenant}/oauth2/v2.0/token`: the checks every grant shares, the
//! dispatch to each grant, and the client-credentials grant (secret, certificate or federated assertion).
//!
//! Checks run in this order: tenant (and `SimControl::refuse_tenant`), grant type, client, client authentication,
//! then the grant's own parameters. Authenticating before the scope is looked at means a caller without valid
//! credentials learns nothing about resources.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Map;

use super::device::DEVICE_CODE_GRANT;
use super::entra_error::EntraError;
#[cfg(any(test, feature = "test-hooks"))]
use super::fault;
use super::issue::{Principal, Subject, mint, token_response};
use super::request::{TokenRequest, parse_form};
use super::token::{Api, now_ms};
use super::{assertion, authcode, device, federated, refresh, user};
use crate::state::{Credential, RegisteredClient, SimState};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The `grant_type` values the endpoint knows.
const GRANT_TYPES: [&str; 5] = [
    "client_credentials",
    DEVICE_CODE_GRANT,
    "authorization_code",
    "refresh_token",
    "password",
];

/// Routes of the Entra simulator.
pub(super) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(device::device_code),
        )
        .route("/{tenant}/oauth2/v2.0/authorize", get(authcode::authorize))
        .with_state(state)
}

async fn token(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    #[cfg(any(test, feature = "test-hooks"))]
    let _in_flight = state.control.token_request_in_flight();
    #[cfg(any(test, feature = "test-hooks"))]
    if let Some(response) = fault::token_endpoint(&state, &tenant, &headers, &body).await {
        return response;
    }
    match grant(&state, &tenant, &headers, &body) {
        Ok(response) => response,
        Err(err) => {
            tracing::debug!(code = err.code(), "simulated Entra refused a token request");
            err.into_response(&state.authority)
        }
    }
}

fn grant(
    state: &SimState,
    tenant_name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, EntraError> {
    let tenant = state
        .directory
        .tenant(tenant_name)
        .ok_or_else(|| EntraError::tenant_not_found(tenant_name))?;
    #[cfg(any(test, feature = "test-hooks"))]
    if let Some(code) = state
        .control
        .refusal(&state.directory.tenant_key(tenant_name))
    {
        return Err(EntraError::from_code(code));
    }
    let form = parse_form(headers, body)?;
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let grant_type = param("grant_type")
        .ok_or_else(|| EntraError::missing_parameter("grant_type"))?
        .to_owned();
    if !GRANT_TYPES.contains(&grant_type.as_str()) {
        return Err(EntraError::unsupported_grant_type(&grant_type));
    }
    let basic = basic_credentials(headers)?;
    let client_id = match (param("client_id"), &basic) {
        (Some(body_id), Some((basic_id, _))) if body_id != basic_id => {
            return Err(EntraError::malformed_request(
                "client_id differs from the Authorization header.",
            ));
        }
        (Some(id), _) => id.to_owned(),
        (None, Some((id, _))) => id.clone(),
        (None, None) => return Err(EntraError::missing_parameter("client_id")),
    };
    let client = state
        .clients
        .get(&client_id.to_ascii_lowercase())
        .ok_or_else(|| EntraError::unknown_client(&client_id, tenant_name))?;
    let secret = param("client_secret").or(basic.as_ref().map(|(_, secret)| secret.as_str()));
    let federated_jti = authenticate(
        state,
        client,
        tenant_name,
        secret,
        param("client_assertion_type"),
        param("client_assertion"),
    )?;
    let request = TokenRequest::new(state, tenant, client, form);
    let response = match grant_type.as_str() {
        DEVICE_CODE_GRANT => device::redeem(&request)?,
        "authorization_code" => authcode::redeem(&request)?,
        "refresh_token" => refresh::refresh(&request)?,
        "password" => user::password(&request)?,
        _ => client_credentials(&request)?,
    };
    #[cfg(any(test, feature = "test-hooks"))]
    if let Some(jti) = federated_jti {
        state.control.record_federated_assertion(jti);
    }
    // Only the test hooks keep the assertion's `jti`.
    #[cfg(not(any(test, feature = "test-hooks")))]
    let _ = federated_jti;
    Ok(response)
}

/// Checks the client's credential. A public client must present none; every other client must present its own.
/// Returns the `jti` of an accepted federated assertion, recorded once the token is issued.
fn authenticate(
    state: &SimState,
    client: &RegisteredClient,
    tenant: &str,
    secret: Option<&str>,
    assertion_type: Option<&str>,
    assertion: Option<&str>,
) -> Result<Option<String>, EntraError> {
    let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    match (&client.credential, secret, assertion) {
        (Credential::Public, None, None) => Ok(None),
        (Credential::Public, _, _) => Err(EntraError::public_client_with_credential()),
        (_, None, None) => Err(EntraError::missing_credential()),
        (Credential::Secret(expected), Some(given), _) if given == expected => Ok(None),
        (_, Some(_), _) => Err(EntraError::invalid_secret(&client.client_id)),
        (Credential::Secret(_), None, Some(_)) => Err(EntraError::invalid_assertion(
            700027,
            "Client assertion failed signature validation. No certificate is registered for this application.".to_owned(),
        )),
        (Credential::Certificate(certificate), None, Some(assertion)) => {
            if assertion_type != Some(JWT_BEARER) {
                return Err(EntraError::malformed_request("client_assertion_type must be the jwt-bearer type."));
            }
            // The audience is the token endpoint exactly as the client addressed it.
            let expected_aud = format!("{}/{tenant}/oauth2/v2.0/token", state.authority);
            assertion::verify(assertion, certificate, &client.client_id, &expected_aud, &state.replay, now)
                .map(|()| None)
                .map_err(|rejection| EntraError::invalid_assertion(rejection.code(), rejection.to_string()))
        }
        (Credential::Federated { issuer, subject }, None, Some(assertion)) => {
            if assertion_type != Some(JWT_BEARER) {
                return Err(EntraError::malformed_request("client_assertion_type must be the jwt-bearer type."));
            }
            federated::verify(assertion, issuer, subject, now)
                .map(Some)
                .map_err(|rejection| EntraError::invalid_assertion(rejection.code(), rejection.to_string()))
        }
    }
}

/// Client credentials (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>):
/// an app token; public clients have no credential to use it with.
fn client_credentials(request: &TokenRequest<'_>) -> Result<Response, EntraError> {
    let TokenRequest { state, client, .. } = request;
    if matches!(client.credential, Credential::Public) {
        return Err(EntraError::missing_credential());
    }
    let scope = request.required("scope")?;
    let resource = single_resource(scope)?;
    if Api::from_resource(&resource).is_none() {
        return Err(EntraError::unknown_resource(&resource, &request.tenant.id));
    }
    let subject = Subject {
        appid: &client.client_id,
        appidacr: client.credential.appidacr(),
        principal: Principal::App { oid: &client.oid },
    };
    let minted = mint(state, &request.tenant.id, &resource, &subject)?;
    Ok(token_response(state, minted, Map::new()))
}

/// The one resource named by `scope`, which must be `<resource>/.default` (repeated scopes for the same resource
/// are tolerated, as Entra does).
fn single_resource(scope: &str) -> Result<String, EntraError> {
    let mut resources: Vec<&str> = Vec::new();
    for item in scope.split_whitespace() {
        let resource = item
            .strip_suffix("/.default")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| EntraError::invalid_scope(item))?;
        if !resources.iter().any(|r| r.eq_ignore_ascii_case(resource)) {
            resources.push(resource);
        }
    }
    match resources.as_slice() {
        [] => Err(EntraError::invalid_scope(scope)),
        [one] => Ok((*one).to_owned()),
        _ => Err(EntraError::multiple_resources()),
    }
}

/// HTTP Basic client credentials (RFC 6749 §2.3.1: both parts are form-urlencoded before base64).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, EntraError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
    else {
        return Ok(None);
    };
    let invalid = || {
        EntraError::malformed_request("The Authorization header is not valid Basic authentication.")
    };
    let text = std::str::from_utf8(value).map_err(|_| invalid())?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(invalid());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
    Ok(Some((form_decode(id), form_decode(secret))))
}

fn form_decode(component: &str) -> String {
    url::form_urlencoded::parse(
        format!("v={}", component.replace('&', "%26").replace('=', "%3D")).as_bytes(),
    )
    .next()
    .map(|(_, value)| value.into_owned())
    .unwrap_or_default()
}

#[cfg(test)]
mod tests;
