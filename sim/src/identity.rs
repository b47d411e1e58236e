//! The managed-identity token server
//! (<https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>,
//! <https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity>): one listener answering both Azure
//! IMDS (`GET /metadata/identity/oauth2/token`, header `Metadata: true`) and App Service (`GET /msi/token`, header
//! `X-IDENTITY-HEADER`), each in its own response shape.
//!
//! The system-assigned identity (`SimOptions::SYSTEM_IDENTITY_CLIENT_ID`) answers when a request names none;
//! user-assigned ones are chosen by `client_id` (or by their object id as `object_id` / `principal_id`). Tokens are
//! app tokens in the home tenant with the configured roles. `SimControl::set_fault` applies here too, with
//! IMDS-shaped error bodies, so retries against IMDS can be tested; `refuse_tenant` does not.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
#[cfg(any(test, feature = "test-hooks"))]
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

#[cfg(any(test, feature = "test-hooks"))]
use super::fault;
use super::issue::{Minted, Principal, Subject, mint};
use super::options::SimOptions;
use super::token::Api;
use crate::state::SimState;

/// Routes of the managed-identity server.
pub(super) fn router(state: Arc<SimState>) -> Router {
    let router = Router::new()
        .route("/metadata/identity/oauth2/token", get(imds))
        .route("/msi/token", get(app_service));
    // `layer` (not `route_layer`) so that requests to unknown paths are counted too.
    #[cfg(any(test, feature = "test-hooks"))]
    let router = router.layer(middleware::from_fn_with_state(
        Arc::clone(&state),
        fault::identity_server,
    ));
    router.with_state(state)
}

/// An error in the managed-identity endpoints' `{error, error_description}` shape.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        (self.status, axum::Json(body)).into_response()
    }
}

fn invalid_request(description: &str) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        description: description.to_owned(),
    }
}

/// IMDS: requires `Metadata: true` (an SSRF guard) and answers every number as a string.
async fn imds(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("metadata").map(|v| v.as_bytes()) != Some(b"true") {
        return invalid_request("Required metadata header not specified").into_response();
    }
    // api-version is a date; 2018-02-01 or later is required, and dates compare as strings.
    match query.get("api-version") {
        None => {
            return invalid_request("Required query variable 'api-version' is missing")
                .into_response();
        }
        Some(version) if version.as_str() < "2018-02-01" => {
            return invalid_request("Invalid api-version; 2018-02-01 or later is required")
                .into_response();
        }
        Some(_) => {}
    }
    match issue(&state, &query) {
        Ok((resource, _, minted)) => axum::Json(json!({
            "access_token": minted.access_token,
            "refresh_token": "",
            "expires_in": minted.lifetime.as_secs().max(1).to_string(),
            "expires_on": minted.expires_on.to_string(),
            "not_before": minted.not_before.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }))
        .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// App Service (and Container Apps): requires `X-IDENTITY-HEADER`; answers `expires_on` and no `expires_in`.
async fn app_service(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match headers.get("x-identity-header") {
        None => {
            return invalid_request("Required header X-IDENTITY-HEADER not specified")
                .into_response();
        }
        Some(value) if value.as_bytes() != state.identity_header.as_bytes() => {
            return Refusal {
                status: StatusCode::UNAUTHORIZED,
                error: "unauthorized_client",
                description: "The X-IDENTITY-HEADER is not valid".to_owned(),
            }
            .into_response();
        }
        Some(_) => {}
    }
    if query.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return invalid_request("Required query variable 'api-version' must be 2019-08-01")
            .into_response();
    }
    match issue(&state, &query) {
        Ok((resource, client_id, minted)) => axum::Json(json!({
            "access_token": minted.access_token,
            "expires_on": minted.expires_on.to_string(),
            "not_before": minted.not_before.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id,
        }))
        .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// The identity and resource a request names, and the token: `(resource as asked, client id, token)`.
fn issue(
    state: &SimState,
    query: &HashMap<String, String>,
) -> Result<(String, String, Minted), Refusal> {
    let param = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let resource = param("resource")
        .ok_or_else(|| invalid_request("Required query variable 'resource' is missing"))?;
    let by_object_id = |oid: &str| {
        state
            .managed_identities
            .values()
            .find(|i| i.oid.eq_ignore_ascii_case(oid))
    };
    let identity = match (
        param("client_id"),
        param("object_id").or(param("principal_id")),
    ) {
        (Some(client_id), _) => state
            .managed_identities
            .get(&client_id.to_ascii_lowercase()),
        (None, Some(oid)) => by_object_id(oid),
        (None, None) => state
            .managed_identities
            .get(&SimOptions::SYSTEM_IDENTITY_CLIENT_ID.to_ascii_lowercase()),
    }
    .ok_or_else(|| invalid_request("Identity not found"))?;
    if Api::from_resource(resource).is_none() {
        return Err(invalid_request(&format!("Resource '{resource}' not found")));
    }
    let subject = Subject {
        appid: &identity.client_id,
        // Managed identities authenticate to Entra with a certificate the platform holds.
        appidacr: "2",
        principal: Principal::App { oid: &identity.oid },
    };
    let minted =
        mint(state, &state.directory.home().id, resource, &subject).map_err(|_| Refusal {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "unknown_error",
            description: "The token could not be signed".to_owned(),
        })?;
    Ok((resource.to_owned(), identity.client_id.clone(), minted))
}

#[cfg(test)]
mod tests;
