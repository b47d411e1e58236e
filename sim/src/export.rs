//! Documents full of absolute links, for link rewriting: MDE's "via files" export answer (storage
//! download links next to the API's own) and a streamed document of any size.

#[cfg(any(test, feature = "test-hooks"))]
use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
#[cfg(any(test, feature = "test-hooks"))]
use axum::body::{Body, Bytes};
#[cfg(any(test, feature = "test-hooks"))]
use axum::extract::Query;
use axum::extract::State;
#[cfg(any(test, feature = "test-hooks"))]
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
#[cfg(any(test, feature = "test-hooks"))]
use serde::Deserialize;
use serde_json::json;

use super::server::ApiServer;

/// The "via files" export answer
/// (<https://learn.microsoft.com/en-us/defender-endpoint/api/get-assessment-methods-properties>): download links on
/// Azure Storage, which carry their own SAS signature and must reach the client untouched, next to this API's own
/// links.
pub(super) async fn export(State(server): State<Arc<ApiServer>>) -> Response {
    let storage =
        "https://wdatpexport.blob.core.windows.net/export-6f1d0a52/SoftwareVulnerabilities";
    Json(json!({
        "@odata.context": format!("{}/api/$metadata#microsoft.windowsDefenderATP.api.ExportFilesResponse", server.root),
        "exportFiles": [
            format!("{storage}/part-0000.json.gz?sv=2024-05-04&se=2026-11-23T00%3A00%3A00Z&sr=b&sp=r&sig=c2ltdWxhdGVk"),
            format!("{storage}/part-0001.json.gz?sv=2024-05-04&se=2026-11-23T00%3A00%3A00Z&sr=b&sp=r&sig=c2ltdWxhdGVk"),
        ],
        "generatedTime": "2026-11-22T18:00:00Z",
    }))
    .into_response()
}

#[cfg(any(test, feature = "test-hooks"))]
#[derive(Deserialize)]
pub(super) struct LinksQuery {
    count: u64,
}

/// A streamed JSON document of `count` entries, each with this server's own absolute link as a
/// `nextLink` member (some in JSON's escaped-slash form) and a foreign storage link, generated as
/// it is sent (`/_sim/links`).
#[cfg(any(test, feature = "test-hooks"))]
pub(super) async fn links(
    State(server): State<Arc<ApiServer>>,
    Query(LinksQuery { count }): Query<LinksQuery>,
) -> Response {
    const PER_CHUNK: u64 = 97;
    let root = server.root.clone();
    let escaped_root = root.replace('/', "\\/");
    let chunks = futures_util::stream::unfold(0u64, move |start| {
        let (root, escaped_root) = (root.clone(), escaped_root.clone());
        async move {
            if start > count {
                return None;
            }
            let mut text = String::new();
            if start == 0 {
                text.push_str(&format!(
                    "{{\"@odata.context\":\"{root}/api/$metadata#Links\",\"value\":["
                ));
            }
            for i in start..(start + PER_CHUNK).min(count) {
                let link = if i % 2 == 0 {
                    format!("{root}/api/alerts/{i}")
                } else {
                    format!("{escaped_root}\\/api\\/alerts\\/{i}")
                };
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&format!(
                    "{{\"i\":{i},\"nextLink\":\"{link}\",\"download\":\"https://wdatpexport.blob.core.windows.net/x/{i}?sig=abc\"}}"
                ));
            }
            let next = start + PER_CHUNK;
            if next >= count {
                text.push_str(&format!(
                    "],\"@odata.nextLink\":\"{root}/api/alerts?$skiptoken=end\"}}"
                ));
            }
            // Past `count` once the document is closed, so the stream ends.
            let state = if next >= count { count + 1 } else { next };
            Some((Ok::<_, Infallible>(Bytes::from(text)), state))
        }
    });
    // Fused: the gzip layer polls the body once more after its end, which an `unfold` must not see.
    let mut response = Body::from_stream(futures_util::StreamExt::fuse(chunks)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; odata.metadata=minimal"),
    );
    response
}
