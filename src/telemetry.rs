//! Logging: the subscriber set-up (readable text or JSON, filtered by RUST_LOG) and the per-request
//! span. Spans and events never record header values; the request span holds the path without its
//! query.

use std::io::IsTerminal;

use axum::body::Body;
use http::Request;
use std::time::Duration;

use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{
    DefaultOnBodyChunk, DefaultOnEos, DefaultOnRequest, MakeSpan, OnResponse, TraceLayer,
};
use tracing::Span;
use tracing_subscriber::EnvFilter;

/// The filter used when RUST_LOG is not set.
const DEFAULT_FILTER: &str = "defender_token_proxy=info,tower_http=info";

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber, writing to standard error.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a person at a terminal, not for files and log collectors.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// The span every request runs in: method and path, with the route and credential filled in once
/// the request is matched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSpan;

impl MakeSpan<Body> for RequestSpan {
    fn make_span(&mut self, request: &Request<Body>) -> Span {
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            query = %query_keys(request.uri().query()),
            route = tracing::field::Empty,
            credential = tracing::field::Empty,
            tenant = tracing::field::Empty,
        )
    }
}

/// The query's parameter names without their values (`$top&$filter`): enough to audit what was
/// asked, without logging what could be sensitive (search terms, identifiers).
fn query_keys(query: Option<&str>) -> String {
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').map_or(pair, |(key, _)| key))
        .collect::<Vec<_>>()
        .join("&")
}

/// Headers Microsoft APIs answer with their own id for a request, for support cases.
const UPSTREAM_REQUEST_IDS: [&str; 3] = ["request-id", "x-ms-request-id", "client-request-id"];

/// The audit line: one per request, in the request span (method, path, query keys, route,
/// credential, tenant), with the status, the latency and the upstream's request id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuditLine;

impl<B> OnResponse<B> for AuditLine {
    fn on_response(self, response: &http::Response<B>, latency: Duration, _: &Span) {
        let upstream_request_id = UPSTREAM_REQUEST_IDS
            .iter()
            .find_map(|name| response.headers().get(*name))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = latency.as_secs_f64() * 1000.0,
            upstream_request_id,
            "request"
        );
    }
}

/// The tracing layer of the router.
pub(crate) type HttpTraceLayer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    DefaultOnRequest,
    AuditLine,
    DefaultOnBodyChunk,
    DefaultOnEos,
    (),
>;

/// Logs the audit line for every response. Failures are not logged again here: the handler logs
/// their cause once.
pub(crate) fn trace_layer() -> HttpTraceLayer {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_response(AuditLine)
        .on_failure(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_query_parameter_names_are_kept() {
        assert_eq!(
            query_keys(Some("$top=5&$filter=title eq 'secret project'&flag")),
            "$top&$filter&flag"
        );
        assert_eq!(query_keys(None), "");
        assert_eq!(query_keys(Some("&&a=1")), "a");
    }
}
