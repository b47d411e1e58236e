//! `GET /-/identity`: the App Service managed identity protocol (api-version 2019-08-01,
//! <https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity#rest-endpoint-reference>),
//! so that tools whose SDK fetches its own token (azure-identity, msal) get the configured
//! credential's tokens from the proxy's cache with `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` set.
//! Only for the resources of that credential's routes, only to callers holding the identity header.

use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use axum::Router;
use axum::extract::State;
use axum::extract::connect_info::ConnectInfo;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::config::{IdentityEndpoint, resource_of};
use crate::error::ProxyError;
use crate::live::AppState;
use crate::token::TokenKey;

/// The endpoint's path on the main listener.
pub(crate) const PATH: &str = crate::inbound::IDENTITY_PATH;
/// The header callers present the endpoint's secret in (the `IDENTITY_HEADER` variable's value).
const IDENTITY_HEADER: HeaderName = HeaderName::from_static("x-identity-header");
/// The one protocol version served: the one azure-identity and msal send.
const API_VERSION: &str = "2019-08-01";

/// The endpoint's route; the caller adds the method-not-allowed answer.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(issue))
}

/// Answers a token request: the header first (nothing about the configuration is told to a
/// caller without it), then the request, then the resource, then the token from the cache.
async fn issue(State(state): State<AppState>, request: Parts) -> Response {
    let caller = request
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.to_string())
        .unwrap_or_default();
    let live = state.live();
    let outcome = match &live.identity {
        None => Err(ProxyError::IdentityOff),
        Some(endpoint) => answer(&state, &live, endpoint, &request).await,
    };
    match outcome {
        Ok((resource, response)) => {
            state.metrics().identity_request("issued");
            tracing::info!(%resource, %caller, "token issued to a managed identity caller");
            response
        }
        Err(error) => {
            state.metrics().identity_request(error.kind());
            tracing::info!(kind = error.kind(), %caller, error = %crate::report::error_chain(&error), "managed identity request refused");
            error.into_response()
        }
    }
}

async fn answer(
    state: &AppState,
    live: &crate::live::Live,
    endpoint: &IdentityEndpoint,
    request: &Parts,
) -> Result<(String, Response), ProxyError> {
    authenticate(endpoint, &request.headers)?;
    let resource = asked(endpoint, request.uri.query().unwrap_or(""))?;
    let Some((_, scope)) = endpoint.resources.iter().find(|(r, _)| *r == resource) else {
        return Err(ProxyError::IdentityResource {
            resource,
            served: endpoint.resources.iter().map(|(r, _)| r.clone()).collect(),
        });
    };
    let credential = &endpoint.credential;
    let key = TokenKey::new(credential, credential.home_tenant(), scope.clone());
    let token = state
        .tokens()
        .token(&key, credential, &live.entra)
        .await
        .map_err(|error| ProxyError::Token {
            credential: credential.name.clone(),
            tenant: key.tenant.clone(),
            error,
        })?;
    // Always a bearer token: validation refuses an api_token credential here.
    let access_token = token.bearer().ok_or(ProxyError::IdentityRequest(
        "the credential's token is not a bearer token",
    ))?;
    let expires_on = token
        .expires_at_wall
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    // Epoch seconds as a string, as App Service answers (msal and azure-identity parse it so).
    let body = json!({
        "access_token": access_token,
        "expires_on": expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": credential.client_id,
    });
    let response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            // RFC 6749 section 5.1: a token response is never stored by caches.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        format!("{body}\n"),
    )
        .into_response();
    Ok((resource, response))
}

/// The caller must present the secret, once, compared in constant time for equal lengths.
fn authenticate(endpoint: &IdentityEndpoint, headers: &HeaderMap) -> Result<(), ProxyError> {
    let mut presented = headers.get_all(&IDENTITY_HEADER).iter();
    let (first, second) = (presented.next(), presented.next());
    let matches = match (first, second) {
        (Some(value), None) => {
            bool::from(value.as_bytes().ct_eq(endpoint.secret.expose().as_bytes()))
        }
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(ProxyError::IdentityUnauthenticated {
            presented: first.is_some(),
        })
    }
}

/// The resource a request asks for. Its parameters: `api-version` 2019-08-01, `resource` (or
/// `scope`, its `/.default` form), and, if any, a `client_id` that names this endpoint's credential.
fn asked(endpoint: &IdentityEndpoint, query: &str) -> Result<String, ProxyError> {
    let (mut version, mut resource, mut scope) = (None, None, None);
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*name {
            "api-version" => &mut version,
            "resource" => &mut resource,
            "scope" => &mut scope,
            "client_id" if value == endpoint.credential.client_id.as_str() => continue,
            "client_id" | "principal_id" | "object_id" | "mi_res_id" => {
                return Err(ProxyError::IdentityRequest(
                    "it names another identity: the endpoint serves its one credential",
                ));
            }
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(ProxyError::IdentityRequest("a parameter is given twice"));
        }
    }
    if version.as_deref() != Some(API_VERSION) {
        return Err(ProxyError::IdentityRequest(
            "api-version must be 2019-08-01",
        ));
    }
    let resource = match (resource, scope) {
        (Some(resource), None) => resource_of(&resource).to_owned(),
        (None, Some(scope)) => resource_of(&scope).to_owned(),
        (Some(resource), Some(scope)) if resource_of(&resource) == resource_of(&scope) => {
            resource_of(&resource).to_owned()
        }
        (Some(_), Some(_)) => {
            return Err(ProxyError::IdentityRequest(
                "resource and scope name different resources",
            ));
        }
        (None, None) => {
            return Err(ProxyError::IdentityRequest(
                "give the resource (or scope) to get a token for",
            ));
        }
    };
    Ok(resource)
}
