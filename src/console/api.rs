//! The console's JSON: the routes with their allow-lists and samples, every token's state (what
//! `/-/status` and `check --format json` report: state, expiry, audience, roles or scopes, the
//! last error with its hint; never a token), and the last requests (no query, no body).

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{Value, json};

use super::recent::{CAPACITY, Recent};
use super::samples;
use crate::config::TENANT_PLACEHOLDER;
use crate::error::ProxyError;
use crate::live::{AppState, NeededToken};
use crate::route::{Route, Tenancy};

/// The console's API routes.
pub(super) fn routes(recent: Recent) -> Router<AppState> {
    Router::new()
        .route("/-/console/api/overview", get(overview))
        .route("/-/console/api/recent", get(recent_requests))
        .layer(Extension(recent))
}

/// A JSON answer that no cache keeps and no other origin can embed, ending with a newline.
fn json(value: &Value) -> Response {
    super::with_headers("application/json", "no-store", format!("{value}\n"), &[])
}

/// `GET /-/console/api/overview`: routes and tokens.
async fn overview(State(state): State<AppState>) -> Response {
    let live = state.live();
    let routes: Vec<Value> = live.routes.iter().map(|r| route(r)).collect();
    let mut tokens: Vec<Value> = live
        .token_keys()
        .into_iter()
        .map(|needed| token(&state, needed))
        .collect();
    // A legacy API token has no Entra token to show, only that it is sent as configured.
    tokens.extend(
        live.routes
            .iter()
            .filter(|r| matches!(r.tenancy, Tenancy::Static(_)))
            .map(|r| {
                json!({
                    "credential": &*r.credential.name,
                    "type": r.credential.auth.kind(),
                    "route": r.prefix,
                    "state": "static",
                })
            }),
    );
    json(&json!({ "routes": routes, "tokens": tokens }))
}

fn route(route: &Route) -> Value {
    let credential = &route.credential;
    let tenant = credential.home_tenant();
    // A partner route's samples go to its first customer: by the path, or by `X-Tenant-Id`.
    let prefix = route.prefix.replace(TENANT_PLACEHOLDER, &tenant);
    let tenant_header = matches!(route.tenancy, Tenancy::PerRequest { header: true })
        && !route.prefix.contains(TENANT_PLACEHOLDER);
    let samples: Vec<Value> = samples::for_api(route.api)
        .iter()
        .map(|s| {
            let (path, query) = s.path.split_once('?').unwrap_or((s.path, ""));
            let allowed = route.access.as_ref().is_none_or(|a| {
                http::Method::from_bytes(s.method.as_bytes()).is_ok_and(|m| a.allows(&m, path))
            });
            let target = if query.is_empty() {
                format!("{prefix}{path}")
            } else {
                format!("{prefix}{path}?{query}")
            };
            let mut sample = json!({
                "title": s.title,
                "method": s.method,
                "path": target,
                "body": s.body,
                "allowed": allowed,
            });
            if tenant_header {
                sample["headers"] = json!({ "X-Tenant-Id": &*tenant });
            }
            sample
        })
        .collect();
    let access = route.access.as_ref().map(|a| {
        let (methods, paths) = a.rules();
        json!({ "methods": methods, "paths": paths })
    });
    json!({
        "prefix": route.prefix,
        "api": route.api.map(|a| format!("{a:?}").to_lowercase()),
        "upstream": route.upstream.url().as_str(),
        "scope": &*route.scope,
        "credential": &*credential.name,
        "credential_type": credential.auth.kind(),
        "tenants": credential.tenants.iter().map(|t| &**t).collect::<Vec<_>>(),
        "partner": credential.partner,
        "tenant_header": tenant_header,
        "allow": access,
        "rewrite_links": route.rewrite_links,
        "max_body_bytes": route.max_body_bytes,
        "samples": samples,
    })
}

/// One token's state, as `check --format json` describes it.
fn token(state: &AppState, needed: NeededToken) -> Value {
    let NeededToken {
        key,
        credential,
        customer,
    } = needed;
    let status = state.tokens().status(&key);
    let mut entry = json!({
        "credential": &*key.credential,
        "type": credential.auth.kind(),
        "tenant": &*key.tenant,
        "scope": &*key.scope,
        "customer": customer,
        "state": status.state(),
    });
    if let Some(token) = status.token {
        entry["expires_in_s"] = json!(token.expires_in().as_secs());
        entry["expires_at"] =
            json!(humantime::format_rfc3339_seconds(token.expires_at_wall).to_string());
        entry["audience"] = json!(token.audience);
        let claim = if token.delegated { "scopes" } else { "roles" };
        entry[claim] = json!(token.permissions);
        if let Some(account) = &token.account {
            entry["account"] = json!(account);
        }
    }
    if let Some(error) = status.last_error {
        // The problem a request would have received, hint and AADSTS codes included.
        let failure = ProxyError::Token {
            credential: key.credential.clone(),
            tenant: key.tenant.clone(),
            error,
        };
        entry["last_error"] = failure.problem();
    }
    entry
}

/// `GET /-/console/api/recent`: the last requests, newest first.
async fn recent_requests(Extension(recent): Extension<Recent>) -> Response {
    let requests: Vec<Value> = recent
        .newest_first()
        .into_iter()
        .map(|e| {
            json!({
                "at": humantime::format_rfc3339_millis(e.at).to_string(),
                "method": e.method.as_str(),
                "path": &*e.path,
                "status": e.status,
                "latency_ms": e.latency.as_micros() as f64 / 1000.0,
            })
        })
        .collect();
    json(&json!({ "capacity": CAPACITY, "requests": requests }))
}
