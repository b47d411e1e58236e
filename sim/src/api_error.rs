//! Errors in a simulated API's own shape, for every handler and for the quota check in front of
//! them: Defender's `{"error":{code,message,target}}`, Graph's with `innerError`
//! (<https://learn.microsoft.com/en-us/graph/errors>).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::data::rfc3339;
use super::token::{Api, now_ms};

/// An error in the API's own shape: Defender's `{"error":{code,message,target}}` or Graph's with `innerError`.
pub(crate) fn error(api: Api, status: StatusCode, code: &str, message: &str) -> Response {
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
