//! One simulated API server as its handlers see it: its API and root, the caller the token check let in, and
//! errors in the API's own shape. Shared by the router (`defender`) and the handlers of every endpoint.

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::data::rfc3339;
use super::token::{AccessClaims, Api, now_ms};
use crate::state::SimState;

/// One simulated API server.
#[derive(Debug)]
pub(super) struct ApiServer {
    pub(super) api: Api,
    /// "http://127.0.0.1:PORT", the root absolute links are built on.
    pub(super) root: String,
    pub(super) sim: Arc<SimState>,
}

/// Who a request authenticated as; the token check puts it in the request's extensions.
#[derive(Debug, Clone)]
pub(super) enum Caller {
    /// An Entra access token (app or user).
    Bearer(Box<AccessClaims>),
    /// A legacy MDCA API token.
    ApiToken,
}

/// An error in the API's own shape: Defender's `{"error":{code,message,target}}` or Graph's with `innerError`.
pub(super) fn error(api: Api, status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = match api {
        Api::Graph => json!({"error": {"code": code, "message": message, "innerError": {
            "date": rfc3339(now_ms() / 1000), "request-id": request_id, "client-request-id": request_id}}}),
        Api::Mde | Api::Xdr | Api::Mdca => {
            json!({"error": {"code": code, "message": message, "target": request_id}})
        }
    };
    (status, Json(body)).into_response()
}
