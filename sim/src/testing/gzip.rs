//! `/_sim/gzip/*`: bodies that announce gzip, whole or broken, for the proxy's decoding tests.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::server::{ApiServer, error};

/// Bodies announced as `Content-Encoding: gzip`, with a `Content-Length` that matches what is sent, so only decoding
/// can fail, not the transfer. `text`: a whole gzip stream of plain text that names this server's root (not JSON,
/// so a proxy has no links to rewrite in it). Two JSON pages that do not decode: `truncated`, a gzip stream cut off in
/// the middle of its `@odata.nextLink` (inside this server's root, after its first port digit), and `corrupt`, a
/// gzip header followed by bytes that are no deflate data.
pub(super) async fn body(
    State(server): State<Arc<ApiServer>>,
    Path(kind): Path<String>,
) -> Response {
    let (content_type, body) = match kind.as_str() {
        "text" => {
            let text = format!("plain text, not JSON: {}/api/alerts\n", server.root).repeat(20);
            (
                "text/plain; charset=utf-8",
                stored_gzip(text.as_bytes(), None),
            )
        }
        "truncated" => {
            let page = format!(
                r#"{{"value":[{{"id":"da0"}}],"@odata.nextLink":"{}/api/alerts?$skiptoken=b2Zmc2V0OjE"}}"#,
                server.root
            );
            let link = page.find(&server.root).unwrap_or_default();
            let port = server.root.rfind(':').map_or(0, |colon| colon + 2);
            (
                "application/json; charset=utf-8",
                stored_gzip(page.as_bytes(), Some(link + port)),
            )
        }
        // A first block of the reserved type 11 (RFC 1951 section 3.2.3).
        "corrupt" => (
            "application/json; charset=utf-8",
            [&GZIP_HEADER[..], &[0xff; 64]].concat(),
        ),
        _ => {
            return error(
                server.api,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The kind must be 'text', 'truncated' or 'corrupt'.",
            );
        }
    };
    let mut response = Body::from(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    response
}

/// A gzip member header: magic, deflate, no flags, no time, no extra flags, unknown OS (RFC 1952 section 2.3).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// `data` as a gzip member written without compression, so that its bytes stand in the stream as they are: after
/// the member header (10 bytes, RFC 1952 section 2.3) and a stored block's header (5 bytes: BFINAL/BTYPE, LEN,
/// NLEN; RFC 1951 section 3.2.4). With `cut`, the stream ends after that many bytes of `data`, without the rest
/// or the trailer.
fn stored_gzip(data: &[u8], cut: Option<usize>) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    // Writing to a Vec cannot fail.
    drop(encoder.write_all(data));
    let whole = encoder.finish().unwrap_or_default();
    match cut {
        Some(cut) => whole[..(GZIP_HEADER.len() + 5 + cut).min(whole.len())].to_vec(),
        None => whole,
    }
}
