//! The simulated Entra v2 token endpoint, `POST /{tenant}/oauth2/v2.0/token`, client-credentials grant only.
//!
//! Checks run in this order: tenant, grant type, client, client authentication, scope. Authenticating before the
//! scope is looked at means a caller without valid credentials learns nothing about resources.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::assertion;
use super::entra_error::EntraError;
use super::token::{AccessClaims, Api, now_ms};
use super::{Credential, EntraFault, RegisteredClient, SimState};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Routes of the Entra simulator.
pub(super) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .with_state(state)
}

async fn token(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.control.record_token_request();
    match state.control.fault() {
        None => {}
        Some(EntraFault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(EntraFault::ServerError) => {
            return EntraError::server_error().into_response(&state.authority);
        }
        Some(EntraFault::Throttled { retry_after }) => {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            return EntraError::throttled(secs).into_response(&state.authority);
        }
        Some(EntraFault::MalformedJson) => {
            let content_type = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
            return (
                StatusCode::OK,
                content_type,
                "<html><body>upstream connect error</body></html>",
            )
                .into_response();
        }
        Some(EntraFault::RejectAll { code }) => {
            return EntraError::from_code(code).into_response(&state.authority);
        }
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
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, EntraError> {
    if !tenant.eq_ignore_ascii_case(&state.tenant_id)
        && !tenant.eq_ignore_ascii_case(&state.tenant_domain)
    {
        return Err(EntraError::tenant_not_found(tenant));
    }
    let form = parse_form(headers, body)?;
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let grant_type =
        param("grant_type").ok_or_else(|| EntraError::missing_parameter("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(EntraError::unsupported_grant_type(grant_type));
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
        .ok_or_else(|| EntraError::unknown_client(&client_id, tenant))?;
    let secret = param("client_secret").or(basic.as_ref().map(|(_, secret)| secret.as_str()));
    authenticate(
        state,
        client,
        tenant,
        secret,
        param("client_assertion_type"),
        param("client_assertion"),
    )?;
    let scope = param("scope").ok_or_else(|| EntraError::missing_parameter("scope"))?;
    let resource = single_resource(scope)?;
    if Api::from_resource(&resource).is_none() {
        return Err(EntraError::unknown_resource(&resource, tenant));
    }
    issue(state, client, resource)
}

fn authenticate(
    state: &SimState,
    client: &RegisteredClient,
    tenant: &str,
    secret: Option<&str>,
    assertion_type: Option<&str>,
    assertion: Option<&str>,
) -> Result<(), EntraError> {
    match (&client.credential, secret, assertion) {
        (_, None, None) => Err(EntraError::missing_credential()),
        (Credential::Secret(expected), Some(given), _) if given == expected => Ok(()),
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
            let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
            assertion::verify(assertion, certificate, &client.client_id, &expected_aud, &state.replay, now)
                .map_err(|rejection| EntraError::invalid_assertion(rejection.code(), rejection.to_string()))
        }
    }
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

fn issue(
    state: &SimState,
    client: &RegisteredClient,
    resource: String,
) -> Result<Response, EntraError> {
    let lifetime = state.control.token_lifetime();
    let now = now_ms();
    let sim_exp_ms = now.saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX));
    let claims = AccessClaims {
        aud: resource,
        iss: format!("https://sts.windows.net/{}/", state.tenant_id),
        tid: state.tenant_id.clone(),
        appid: client.client_id.clone(),
        appidacr: match client.credential {
            Credential::Secret(_) => "1",
            Credential::Certificate(_) => "2",
        }
        .to_owned(),
        roles: state.roles.clone(),
        idtyp: "app".to_owned(),
        ver: "1.0".to_owned(),
        oid: client.oid.clone(),
        sub: client.oid.clone(),
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
    let number = |duration: Duration| {
        let secs = duration.as_secs().max(1);
        if state.numbers_as_strings {
            Value::String(secs.to_string())
        } else {
            json!(secs)
        }
    };
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": number(lifetime),
        "ext_expires_in": number(lifetime),
        "access_token": access_token,
    });
    if let Some(refresh_in) = state.refresh_in {
        body["refresh_in"] = number(refresh_in);
    }
    let no_store = [
        (header::CACHE_CONTROL, "no-store, no-cache"),
        (header::PRAGMA, "no-cache"),
    ];
    Ok((StatusCode::OK, no_store, axum::Json(body)).into_response())
}

/// The form body. Without the form content type Entra reads no parameters, which surfaces as a missing
/// `grant_type`; a repeated parameter is refused.
fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, EntraError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let mut form = HashMap::new();
    if is_form {
        for (name, value) in url::form_urlencoded::parse(body) {
            if form.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(EntraError::malformed_request(&format!(
                    "The parameter '{name}' is duplicated."
                )));
            }
        }
    }
    Ok(form)
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
