//! Logging: the subscriber set-up (readable text or JSON, filtered by RUST_LOG, written off the
//! runtime threads by `writer`) and the per-request span. Spans and events never record header
//! values; the request span holds the path without its query.

use std::io::IsTerminal;
use std::sync::LazyLock;

use axum::body::Body;
use http::Request;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{
    DefaultOnBodyChunk, DefaultOnEos, DefaultOnRequest, MakeSpan, OnResponse, TraceLayer,
};
use tracing::Span;
use tracing_subscriber::EnvFilter;

mod audit;
mod text;
mod writer;

pub(crate) use audit::{Named, RequestLog, Routed, Spanner};
pub(crate) use writer::LogGuard;

/// Log lines dropped because the writer could not keep up (or standard error was gone): one
/// counter for the process, as the subscriber is.
static LINES_DROPPED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// The counter of dropped log lines, for the metrics registry.
pub(crate) fn lines_dropped() -> Counter {
    LINES_DROPPED.clone()
}

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

/// Installs the global subscriber, writing to standard error through the log writer's thread.
/// Hold the guard until the program ends: dropping it writes the lines still buffered.
pub(crate) fn init(format: LogFormat) -> LogGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colours only for a person at a terminal, not for files and log collectors.
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = writer::spawn(
        std::io::stderr(),
        std::io::stderr,
        lines_dropped(),
        writer::CAPACITY_BYTES,
        writer::WAKE_AT_BYTES,
    );
    if !ansi {
        // The audit line goes to the same writer, in the same format, without the subscriber.
        let _ = audit::SINK.set(audit::Sink {
            writer: writer.clone(),
            json: format == LogFormat::Json,
        });
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Text if ansi => builder.init(),
        // The same lines, written without the colour machinery: the per-request line's cost.
        LogFormat::Text => builder
            .fmt_fields(text::TextFields)
            .event_format(text::TextLine::default())
            .init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

/// The span of every request on the admin listener: method, path and query keys (the main
/// listener's requests are audited by `audit`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSpan;

impl MakeSpan<Body> for RequestSpan {
    fn make_span(&mut self, request: &Request<Body>) -> Span {
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            query = %QueryKeys(request.uri().query()),
            route = tracing::field::Empty,
            credential = tracing::field::Empty,
            tenant = tracing::field::Empty,
        )
    }
}

/// The query's parameter names without their values (`$top&$filter`): enough to audit what was
/// asked, without logging what could be sensitive (search terms, identifiers). Written straight
/// into the log line, without an intermediate string.
struct QueryKeys<'a>(Option<&'a str>);

impl std::fmt::Display for QueryKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self
            .0
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').map_or(pair, |(key, _)| key));
        for (i, key) in keys.enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            f.write_str(key)?;
        }
        Ok(())
    }
}

/// Headers Microsoft APIs answer with their own id for a request, for support cases.
const UPSTREAM_REQUEST_IDS: [&str; 3] = ["request-id", "x-ms-request-id", "client-request-id"];

/// The audit line: one per request, in the request span (method, path, query keys, route,
/// credential, tenant), with the status, the latency and the upstream's request id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuditLine;

impl<B> OnResponse<B> for AuditLine {
    fn on_response(self, response: &http::Response<B>, latency: Duration, _: &Span) {
        // Field values are only evaluated when the line is enabled: no header search otherwise.
        tracing::info!(
            status = response.status().as_u16(),
            // Whole microseconds: the nanoseconds beyond are noise, and the line writes faster.
            latency_ms = latency.as_micros() as f64 / 1000.0,
            upstream_request_id = upstream_request_id(response.headers()),
            "request"
        );
    }
}

/// The first of `UPSTREAM_REQUEST_IDS` present, or "". One pass over the few response headers,
/// where a lookup per name hashed each of them (measured with callgrind).
fn upstream_request_id(headers: &http::HeaderMap) -> &str {
    let mut best: Option<(usize, &http::HeaderValue)> = None;
    for (name, value) in headers {
        if let Some(rank) = UPSTREAM_REQUEST_IDS
            .iter()
            .position(|id| name.as_str() == *id)
            && best.is_none_or(|(best, _)| rank < best)
        {
            best = Some((rank, value));
        }
    }
    best.and_then(|(_, value)| value.to_str().ok())
        .unwrap_or("")
}

/// The tracing layer of the admin router.
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
    fn the_upstream_request_id_is_the_first_of_the_names_by_rank() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(upstream_request_id(&headers), "");
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("client-request-id", "client".parse().unwrap());
        assert_eq!(upstream_request_id(&headers), "client");
        headers.insert("x-ms-request-id", "ms".parse().unwrap());
        assert_eq!(upstream_request_id(&headers), "ms");
        headers.insert("request-id", "first".parse().unwrap());
        headers.append("request-id", "second".parse().unwrap());
        assert_eq!(upstream_request_id(&headers), "first");
    }

    #[test]
    fn only_query_parameter_names_are_kept() {
        let keys = |query| QueryKeys(query).to_string();
        assert_eq!(
            keys(Some("$top=5&$filter=title eq 'secret project'&flag")),
            "$top&$filter&flag"
        );
        assert_eq!(keys(None), "");
        assert_eq!(keys(Some("&&a=1")), "a");
    }
}
