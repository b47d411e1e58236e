//! The developer console at `/-/console`: one page (HTML, CSS, script and icon embedded in the
//! binary, so it works offline) with the routes and their samples, a request editor, the token
//! states and the last requests. Served with a strict Content-Security-Policy; the browser
//! screening applies to it like to every path, so only the proxy's own origin can read or drive it.

mod api;
mod recent;
mod samples;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ProxyError;
use crate::live::AppState;

pub(crate) use recent::Recent;

/// The page's policy: nothing but its own script, style and icon, no inline code, no framing,
/// and fetches to this origin only (<https://www.w3.org/TR/CSP3/>).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The page and its assets, compiled in.
const PAGE: &str = include_str!("console/assets/console.html");
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("console/assets/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("console/assets/console.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("console/assets/icon.svg"),
    ),
];

/// The page and its assets: they hold no data, so they are served without an API key (a browser
/// cannot send one with a navigation); the page then asks for the key its API calls need. Any
/// other path under `/-/console/assets/` is an unknown route, as elsewhere.
pub(crate) fn page() -> Router<AppState> {
    let page = Router::new().route("/-/console", get(console));
    ASSETS
        .iter()
        .fold(page, |router, &(name, content_type, body)| {
            // `no-cache`: the assets change with the binary, and revalidating them costs little.
            let serve = move || async move { with_headers(content_type, "no-cache", body, &[]) };
            router.route(&format!("/-/console/assets/{name}"), get(serve))
        })
        .method_not_allowed_fallback(method_not_allowed)
}

/// Whether `path` is the page or one of its assets: what is served before the API keys.
pub(crate) fn is_page(path: &str) -> bool {
    path == "/-/console"
        || path
            .strip_prefix("/-/console/assets/")
            .is_some_and(|name| ASSETS.iter().any(|&(asset, _, _)| asset == name))
}

/// The JSON the page reads, behind the API keys like every other endpoint.
pub(crate) fn api(recent: Recent) -> Router<AppState> {
    api::routes(recent).method_not_allowed_fallback(method_not_allowed)
}

/// Another method than GET or HEAD: a problem, as on the other `/-/` endpoints.
async fn method_not_allowed(method: Method, uri: Uri) -> ProxyError {
    ProxyError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

async fn console() -> Response {
    with_headers(
        "text/html; charset=utf-8",
        "no-store",
        PAGE,
        &[(header::CONTENT_SECURITY_POLICY, CSP)],
    )
}

/// A response with the headers every console answer carries: no sniffing (the content types are
/// exact), no referrer, no framing, and no reading by other origins' `no-cors` requests
/// (Cross-Origin-Resource-Policy, <https://fetch.spec.whatwg.org/#cross-origin-resource-policy-header>).
pub(super) fn with_headers(
    content_type: &'static str,
    cache: &'static str,
    body: impl IntoResponse,
    extra: &[(HeaderName, &'static str)],
) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, cache),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed.into_iter().chain(extra.iter().cloned()) {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
