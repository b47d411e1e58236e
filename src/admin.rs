//! The proxy's own endpoints, on the main listener and on the admin listener: `/-/healthy` (the
//! process serves), `/-/ready` (every route's token can be had, and no shutdown has begun),
//! `/-/metrics` (Prometheus) and `/-/status` (routes, credentials, token states, rate-limit budgets
//! and their store; never a token, never the store's password).

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::error::ProxyError;
use crate::live::{AppState, Live, NeededToken};
use crate::metrics::BudgetSample;
use crate::token::TokenError;

/// How long readiness waits for a token request before reporting the token as pending.
const READY_WAIT: Duration = Duration::from_secs(5);
/// The OpenMetrics exposition format `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The endpoints, for either router. Another method than GET or HEAD gets a problem (axum adds the
/// `Allow` header, RFC 9110 section 15.5.6), not axum's empty 405.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/metrics", get(metrics))
        .route("/-/status", get(status))
        .method_not_allowed_fallback(method_not_allowed)
}

/// The admin listener's answer for a path it does not serve: a problem, not axum's empty 404.
pub(crate) async fn no_endpoint(uri: Uri) -> ProxyError {
    ProxyError::NoEndpoint {
        path: uri.path().to_owned(),
    }
}

/// The problem for another method than GET or HEAD on one of the proxy's own endpoints.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ProxyError {
    ProxyError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

/// A JSON body that ends with a newline, so that `curl` output does not run into the prompt.
struct Json(Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "application/json")],
            format!("{}\n", self.0),
        )
            .into_response()
    }
}

/// `GET /-/healthy`: 200 while the process serves requests.
async fn healthy() -> Json {
    Json(json!({ "status": "healthy" }))
}

/// `GET /-/ready`: 200 when every route's token is cached or can be obtained and no shutdown has
/// begun; otherwise 503, saying for each token that fails why. Partner customers' tokens are
/// reported as they stand but neither requested nor waited on: one customer's missing consent must
/// not take the proxy out of service for the others.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json) {
    if state.shutting_down() {
        let body = json!({ "ready": false, "shutting_down": true });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    }
    let live = state.live();
    let checks = live.token_keys().into_iter().map(|needed| {
        let (tokens, entra) = (state.tokens().clone(), live.entra.clone());
        async move {
            let NeededToken {
                key,
                credential,
                customer,
            } = needed;
            let mut entry = json!({
                "credential": &*key.credential,
                "tenant": &*key.tenant,
                "scope": &*key.scope,
            });
            if customer {
                entry["customer"] = json!(true);
                let status = tokens.status(&key);
                entry["state"] = json!(status.state());
                if let Some(error) = status.last_error {
                    entry["error"] = problem(&key.credential, &key.tenant, error);
                }
                return (true, entry);
            }
            let wait = tokio::time::timeout(READY_WAIT, tokens.token(&key, &credential, &entra));
            let ok = match wait.await {
                Ok(Ok(token)) => {
                    entry["state"] = json!("valid");
                    entry["expires_in_s"] = json!(token.expires_in().as_secs());
                    true
                }
                Ok(Err(error)) => {
                    entry["state"] = json!("failing");
                    entry["error"] = problem(&key.credential, &key.tenant, error);
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
    let tokens: Vec<Value> = results.into_iter().map(|(_, entry)| entry).collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // The store is reported, never waited on: budgets fall back to local ones without it.
    let mut body = json!({ "ready": ready, "tokens": tokens });
    if let Some(store) = store(&live) {
        body["rate_limit_store"] = store;
    }
    (status, Json(body))
}

/// The rate-limit store's address (without credentials) and state, if one is configured.
fn store(live: &Live) -> Option<Value> {
    let store = live.budgets.store()?;
    Some(json!({
        "url": store.config().url.describe(),
        "prefix": store.config().prefix,
        "state": store.state().name(),
    }))
}

/// `GET /-/metrics`: the Prometheus exposition, with token expiry and readiness read from the
/// cache at scrape time (without requesting anything).
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let live = state.live();
    let expiries: Vec<_> = live
        .token_keys()
        .into_iter()
        .map(|needed| {
            let expires_in = state
                .tokens()
                .status(&needed.key)
                .token
                .map(|t| t.expires_in())
                .unwrap_or_default();
            (needed, expires_in)
        })
        .collect();
    let ready = !state.shutting_down()
        && expiries
            .iter()
            .all(|(needed, e)| needed.customer || !e.is_zero());
    let expiries: Vec<_> = expiries
        .iter()
        .map(|(needed, e)| (needed.key.label(), *e))
        .collect();
    let budgets = live.budgets.views().await;
    let samples: Vec<BudgetSample<'_>> = budgets
        .iter()
        .map(|view| BudgetSample {
            budget: &view.label,
            minute: view.remaining.minute,
            hour: view.remaining.hour,
            held_for: view.remaining.held_for.unwrap_or_default(),
        })
        .collect();
    state.metrics().set_budgets(&samples);
    (
        [(header::CONTENT_TYPE, OPENMETRICS)],
        state.metrics().encode(&expiries, ready),
    )
}

/// `GET /-/status`: what the proxy is configured with and the state of every token.
async fn status(State(state): State<AppState>) -> Json {
    let live = state.live();
    let routes: Vec<Value> = live
        .routes
        .iter()
        .map(|r| {
            json!({
                "prefix": r.prefix,
                "api": r.api.map(|a| format!("{a:?}").to_lowercase()),
                "upstream": r.upstream.url().as_str(),
                "credential": &*r.credential.name,
                "scope": &*r.scope,
                "rate_limit": r.rate_limit.as_ref().map(|l| json!({
                    "family": &*l.family,
                    "per_minute": l.limits.per_minute,
                    "per_hour": l.limits.per_hour,
                    "counted_per": if l.per_tenant { "tenant" } else { "app and tenant" },
                })),
            })
        })
        .collect();
    let budgets: Vec<Value> = live
        .budgets
        .views()
        .await
        .into_iter()
        .map(|view| {
            json!({
                "budget": view.label,
                "per_minute": view.limits.per_minute,
                "per_hour": view.limits.per_hour,
                "remaining_minute": view.remaining.minute,
                "remaining_hour": view.remaining.hour,
                "held_for_s": view.remaining.held_for.map(|h| h.as_secs_f64().ceil()),
                "shared": view.shared,
                "waits": view.waits,
                "refusals": view.refusals,
                "holds": view.holds,
            })
        })
        .collect();
    let credentials: Vec<Value> = live
        .credentials
        .values()
        .map(|c| {
            json!({
                "name": &*c.name,
                "type": c.auth.kind(),
                "authority": &*c.authority,
                "tenants": c.tenants.iter().map(|t| &**t).collect::<Vec<_>>(),
                "partner": c.partner,
                "client_id": c.client_id,
            })
        })
        .collect();
    let tokens: Vec<Value> = live
        .token_keys()
        .into_iter()
        .map(|NeededToken { key, customer, .. }| {
            let status = state.tokens().status(&key);
            let mut entry = json!({
                "credential": &*key.credential,
                "tenant": &*key.tenant,
                "scope": &*key.scope,
                "state": status.state(),
                "last_error": status.last_error.map(|e| problem(&key.credential, &key.tenant, e)),
                "customer": customer,
            });
            if let Some(account) = status.token.as_ref().and_then(|t| t.account.clone()) {
                entry["account"] = json!(account);
            }
            if let Some(token) = status.token {
                entry["valid_until"] = json!(rfc3339(token.expires_at_wall));
                entry["last_refresh"] = json!(rfc3339(token.acquired_at_wall));
                entry["expires_in_s"] = json!(token.expires_in().as_secs());
                entry["permissions"] = json!(token.permissions);
            }
            entry
        })
        .collect();
    let last_reload = state
        .last_reload()
        .map(|r| json!({ "at": rfc3339(r.at), "applied": r.error.is_none(), "error": r.error }));
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": rfc3339(state.started_at()),
        "shutting_down": state.shutting_down(),
        "config": {
            "source": state.source().map(|s| s.describe()),
            "last_reload": last_reload,
        },
        "routes": routes,
        "credentials": credentials,
        "tokens": tokens,
        "rate_limits": {
            "retry_after_max_s": live.retry_after_max.as_secs(),
            "store": store(&live),
            "budgets": budgets,
        },
    }))
}

/// A token failure as the problem object a request would have received.
fn problem(
    credential: &std::sync::Arc<str>,
    tenant: &std::sync::Arc<str>,
    error: std::sync::Arc<TokenError>,
) -> Value {
    ProxyError::Token {
        credential: credential.clone(),
        tenant: tenant.clone(),
        error,
    }
    .problem()
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}
