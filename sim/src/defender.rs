//! The simulated Defender for Endpoint, Defender XDR, Graph security and Defender for Cloud Apps APIs.
//!
//! Each API has its own listener. Every request is counted and must carry a bearer token issued for that API's resource
//! (the `/_sim/*` test endpoints included), app or user token alike; MDCA also takes a legacy API token as
//! `Authorization: Token <key>` (<https://learn.microsoft.com/en-us/defender-cloud-apps/api-tokens-legacy>). Lists use
//! OData paging with absolute `@odata.nextLink`s on the server's own root, as the real services do; MDCA pages by
//! request body instead. Other OData options (`$filter`, `$orderby`, `$select`) are accepted and ignored. JSON answers
//! are gzipped for clients that ask for it, as the real services do.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, Uri, Version, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use tower_http::compression::CompressionLayer;

use super::data::Dataset;
use super::server::{ApiServer, Caller, error};
#[cfg(any(test, feature = "test-hooks"))]
use super::testing;
use super::token::{Api, TokenRejection};
use super::{export, mdca};
use crate::state::SimState;

/// Largest `$top` the Defender APIs accept.
const MAX_TOP: usize = 10_000;

/// Routes of one API server, behind the token check.
pub(super) fn router(api: Api, root: String, sim: Arc<SimState>) -> Router {
    let server = Arc::new(ApiServer { api, root, sim });
    let routes = match api {
        Api::Mde => Router::new()
            .route("/api/alerts", list_route(Collection::Alerts))
            .route("/api/alerts/{id}", entity_route(Collection::Alerts))
            .route("/api/machines", list_route(Collection::Machines))
            .route("/api/machines/{id}", entity_route(Collection::Machines))
            .route("/api/advancedqueries/run", post(hunting)),
        Api::Xdr => Router::new()
            .route("/api/incidents", list_route(Collection::Incidents))
            .route("/api/incidents/{id}", entity_route(Collection::Incidents))
            .route("/api/advancedhunting/run", post(hunting)),
        Api::Graph => Router::new()
            .route(
                "/v1.0/security/alerts_v2",
                list_route(Collection::GraphAlerts),
            )
            .route(
                "/v1.0/security/alerts_v2/{id}",
                entity_route(Collection::GraphAlerts),
            )
            .route(
                "/v1.0/security/incidents",
                list_route(Collection::GraphIncidents),
            )
            .route(
                "/v1.0/security/incidents/{id}",
                entity_route(Collection::GraphIncidents),
            )
            .route("/v1.0/security/runHuntingQuery", post(hunting)),
        Api::Mdca => Router::new().route(
            "/api/v1/alerts/",
            get(mdca::alerts_get).post(mdca::alerts_post),
        ),
    };
    // Every server answers MDE's "via files" export, for link rewriting tests on any route.
    let routes = routes.route(
        "/api/machines/SoftwareVulnerabilitiesExport",
        get(export::export),
    );
    #[cfg(any(test, feature = "test-hooks"))]
    let routes = routes.merge(testing::routes());
    routes
        .fallback(not_found)
        // `layer` (not `route_layer`) so unknown paths are also counted and need a token, as on the real APIs.
        .layer(middleware::from_fn_with_state(
            Arc::clone(&server),
            authorize,
        ))
        // Microsoft's APIs identify each request for support cases.
        .layer(middleware::map_response(
            |mut response: Response| async move {
                if let Ok(id) = HeaderValue::try_from(uuid::Uuid::new_v4().to_string()) {
                    response.headers_mut().insert("request-id", id);
                }
                response
            },
        ))
        // Outermost, so that errors are compressed too. Microsoft's APIs gzip their answers when the request's
        // `Accept-Encoding` allows it: Graph's SDKs send `Accept-Encoding: gzip` and decode what comes back
        // (<https://microsoftgraph.github.io/msgraph-sdk-design/middleware/DecompressionHandler.html>), and Graph
        // answers carry `Vary: Accept-Encoding`; the Defender APIs do the same (observed). Python's `requests` and
        // `httpx` ask by default. A body that already has a `Content-Encoding` is left as it is.
        .layer(CompressionLayer::new().compress_when(json_only))
        .with_state(server)
}

/// Only JSON is compressed: the byte streams of the test hooks (`/_sim/bytes`) keep their length and pattern.
fn json_only(_: StatusCode, _: Version, headers: &HeaderMap, _: &Extensions) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            let t = t.trim().to_ascii_lowercase();
            t == "application/json" || t.ends_with("+json")
        })
}

async fn not_found(State(server): State<Arc<ApiServer>>) -> Response {
    error(
        server.api,
        StatusCode::NOT_FOUND,
        "NotFound",
        "The requested resource was not found.",
    )
}

/// The caller of a request to `server`: MDCA's `Token` scheme is checked against the configured keys; every
/// other value must be a valid bearer token for this API.
fn authenticate(
    server: &ApiServer,
    authorization: Option<&[u8]>,
) -> Result<Caller, TokenRejection> {
    let api_token = (server.api == Api::Mdca)
        .then(|| mdca::api_token(server, authorization))
        .flatten();
    if let Some(caller) = api_token {
        return caller;
    }
    let generation = server.sim.control.generation();
    server
        .sim
        .keys
        .check(authorization, server.api, generation)
        .map(|claims| Caller::Bearer(Box::new(claims)))
}

async fn authorize(
    State(server): State<Arc<ApiServer>>,
    mut request: Request,
    next: Next,
) -> Response {
    #[cfg(any(test, feature = "test-hooks"))]
    server
        .sim
        .control
        .record_api_request(request.headers().get(header::ACCEPT_ENCODING));
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match authenticate(&server, authorization) {
        Ok(caller) => {
            let (app, tenant) = match &caller {
                Caller::Bearer(claims) => (claims.appid.as_str(), claims.tid.as_str()),
                // A legacy Cloud Apps token is one tenant's; Cloud Apps counts per tenant.
                Caller::ApiToken => ("api-token", "api-token"),
            };
            if let Some(throttled) = server.sim.throttle.refusal(server.api, app, tenant) {
                return throttled;
            }
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(rejection) => {
            #[cfg(any(test, feature = "test-hooks"))]
            server
                .sim
                .control
                .record_unauthorized(matches!(rejection, TokenRejection::Expired));
            let (code, prefix) = match server.api {
                Api::Graph => (
                    "InvalidAuthenticationToken",
                    "Access token validation failure",
                ),
                _ => ("Unauthorized", "Authorization failed"),
            };
            let mut response = error(
                server.api,
                StatusCode::UNAUTHORIZED,
                code,
                &format!("{prefix}: {rejection}."),
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}

fn context_url(server: &ApiServer, entity_set: &str) -> String {
    match server.api {
        Api::Graph => format!("{}/v1.0/$metadata#{entity_set}", server.root),
        _ => format!("{}/api/$metadata#{entity_set}", server.root),
    }
}

/// The OData entity sets served as lists.
#[derive(Debug, Clone, Copy)]
enum Collection {
    Alerts,
    Machines,
    Incidents,
    GraphAlerts,
    GraphIncidents,
}

impl Collection {
    fn items(self, data: &Dataset) -> &[Value] {
        match self {
            Self::Alerts => &data.alerts,
            Self::Machines => &data.machines,
            Self::Incidents => &data.incidents,
            Self::GraphAlerts => &data.graph_alerts,
            Self::GraphIncidents => &data.graph_incidents,
        }
    }

    /// The `@odata.context` fragment.
    fn entity_set(self) -> &'static str {
        match self {
            Self::Alerts => "Alerts",
            Self::Machines => "Machines",
            Self::Incidents => "Incidents",
            Self::GraphAlerts => "security/alerts_v2",
            Self::GraphIncidents => "security/incidents",
        }
    }

    /// (id property, entity name for "not found" messages).
    fn key_and_kind(self) -> (&'static str, &'static str) {
        match self {
            Self::Alerts | Self::GraphAlerts => ("id", "Alert"),
            Self::Machines => ("id", "Machine"),
            Self::Incidents => ("incidentId", "Incident"),
            Self::GraphIncidents => ("id", "Incident"),
        }
    }
}

fn list_route(collection: Collection) -> MethodRouter<Arc<ApiServer>> {
    get(
        move |State(server): State<Arc<ApiServer>>, OriginalUri(uri): OriginalUri| async move {
            list(&server, &uri, collection)
        },
    )
}

fn entity_route(collection: Collection) -> MethodRouter<Arc<ApiServer>> {
    get(
        move |State(server): State<Arc<ApiServer>>, Path(id): Path<String>| async move {
            entity(&server, &id, collection)
        },
    )
}

fn list(server: &ApiServer, uri: &Uri, collection: Collection) -> Response {
    let items = collection.items(&server.sim.data);
    let (top, offset) = match paging(uri.query(), server.sim.page_size) {
        Ok(paging) => paging,
        Err(message) => {
            let code = if server.api == Api::Graph {
                "BadRequest"
            } else {
                "ODataError"
            };
            return error(server.api, StatusCode::BAD_REQUEST, code, &message);
        }
    };
    let end = offset.saturating_add(top).min(items.len());
    let page = &items[offset.min(end)..end];
    let mut body = Map::new();
    body.insert(
        "@odata.context".to_owned(),
        json!(context_url(server, collection.entity_set())),
    );
    body.insert("value".to_owned(), json!(page));
    if end < items.len() {
        let skiptoken = URL_SAFE_NO_PAD.encode(format!("offset:{end}"));
        let next = format!(
            "{}{}?$top={top}&$skiptoken={skiptoken}",
            server.root,
            uri.path()
        );
        body.insert("@odata.nextLink".to_owned(), json!(next));
    }
    Json(Value::Object(body)).into_response()
}

/// `($top, offset)` from `$top`, `$skip` and `$skiptoken` (which wins over `$skip`, since it already holds the
/// position the previous page reached).
fn paging(query: Option<&str>, default_top: usize) -> Result<(usize, usize), String> {
    let (mut top, mut skip, mut skiptoken) = (default_top, 0, None);
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("Invalid value '{value}' for query option {name}."))
        };
        match name.as_ref() {
            "$top" => top = number()?,
            "$skip" => skip = number()?,
            "$skiptoken" => {
                skiptoken = Some(
                    decode_skiptoken(&value)
                        .ok_or_else(|| "The $skiptoken is not valid.".to_owned())?,
                )
            }
            _ => {}
        }
    }
    if top > MAX_TOP {
        return Err(format!(
            "The limit of '{MAX_TOP}' for Top query has been exceeded. The value from the incoming request is '{top}'."
        ));
    }
    Ok((top.max(1), skiptoken.unwrap_or(skip)))
}

fn decode_skiptoken(token: &str) -> Option<usize> {
    let decoded = URL_SAFE_NO_PAD.decode(token).ok()?;
    std::str::from_utf8(&decoded)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

fn entity(server: &ApiServer, id: &str, collection: Collection) -> Response {
    let (key, kind) = collection.key_and_kind();
    let found = collection
        .items(&server.sim.data)
        .iter()
        .find(|item| match &item[key] {
            Value::String(s) => s.eq_ignore_ascii_case(id),
            Value::Number(n) => n.as_u64().is_some_and(|n| id.parse() == Ok(n)),
            _ => false,
        });
    match found {
        Some(Value::Object(fields)) => {
            let mut body = Map::new();
            let context = context_url(server, &format!("{}/$entity", collection.entity_set()));
            body.insert("@odata.context".to_owned(), json!(context));
            body.extend(fields.clone());
            Json(Value::Object(body)).into_response()
        }
        _ => error(
            server.api,
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("{kind} {id} was not found"),
        ),
    }
}

/// Advanced hunting: MDE `{Schema,Results}`, XDR adds `Stats`, Graph uses lower-case `{schema,results}`.
/// The body key is `Query`, case-sensitive, as the APIs require.
async fn hunting(State(server): State<Arc<ApiServer>>, body: Bytes) -> Response {
    let query = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("Query").and_then(Value::as_str).map(str::to_owned));
    if query.is_none_or(|q| q.trim().is_empty()) {
        let code = if server.api == Api::Graph {
            "BadRequest"
        } else {
            "InvalidRequestBody"
        };
        return error(
            server.api,
            StatusCode::BAD_REQUEST,
            code,
            "Request body is invalid: the 'Query' property is required.",
        );
    }
    let hunting = &server.sim.data.hunting;
    let rows = hunting.first().map_or(0, |(_, _, values)| values.len());
    let results: Vec<Value> = (0..rows)
        .map(|row| {
            Value::Object(
                hunting
                    .iter()
                    .map(|(name, _, values)| ((*name).to_owned(), values[row].clone()))
                    .collect(),
            )
        })
        .collect();
    let body = match server.api {
        Api::Graph => json!({
            "@odata.context": format!("{}/v1.0/$metadata#microsoft.graph.security.huntingQueryResults", server.root),
            "schema": hunting.iter().map(|(name, kind, _)| json!({"name": name, "type": kind})).collect::<Vec<_>>(),
            "results": results,
        }),
        _ => {
            let mut body = json!({
                "Schema": hunting.iter().map(|(name, kind, _)| json!({"Name": name, "Type": kind})).collect::<Vec<_>>(),
                "Results": results,
            });
            if server.api == Api::Xdr {
                body["Stats"] = json!({"ExecutionTime": 0.0156, "resource_usage": {"cpu": {"total": 0.0156}},
                                      "dataset_statistics": [{"table_row_count": rows, "table_size": 1024}]});
            }
            body
        }
    };
    Json(body).into_response()
}

#[cfg(test)]
mod tests;
