//! The proxy's own health endpoints: `/-/healthy` (the process answers) and `/-/ready` (every
//! route's credential holds a valid token or can get one now).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ProxyError;

/// How long readiness waits for a token request before reporting the credential as pending.
const READY_WAIT: Duration = Duration::from_secs(5);

/// `GET /-/healthy`: 200 while the process serves requests.
pub(crate) async fn healthy() -> Json<Value> {
    Json(json!({ "status": "healthy" }))
}

/// `GET /-/ready`: 200 when every route's token is cached or can be obtained; otherwise 503 with,
/// for each credential that fails, the reason.
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let checks = state.token_keys().into_iter().map(|(key, credential)| {
        let tokens = state.tokens.clone();
        async move {
            let mut entry = json!({
                "credential": &*key.credential,
                "tenant": &*key.tenant,
                "scope": &*key.scope,
            });
            let ok = match tokio::time::timeout(READY_WAIT, tokens.token(&key, &credential)).await {
                Ok(Ok(token)) => {
                    entry["state"] = json!("valid");
                    entry["expires_in_s"] = json!(token.expires_in().as_secs());
                    true
                }
                Ok(Err(error)) => {
                    let problem = ProxyError::Token {
                        credential: key.credential.clone(),
                        tenant: key.tenant.clone(),
                        error,
                    };
                    entry["state"] = json!("failing");
                    entry["error"] = problem.problem();
                    false
                }
                Err(_) => {
                    entry["state"] = json!("pending");
                    entry["error"] = json!(format!("no answer from Entra within {READY_WAIT:?}"));
                    false
                }
            };
            (ok, entry)
        }
    });
    let results = join_all(checks).await;
    let ready = results.iter().all(|(ok, _)| *ok);
    let credentials: Vec<Value> = results.into_iter().map(|(_, entry)| entry).collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": ready, "tokens": credentials })),
    )
}
