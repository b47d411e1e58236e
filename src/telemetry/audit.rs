//! The audit line, one per request: started when the request comes in (method, path, query keys),
//! given the route, credential and tenant by forwarding, and written when the response head is
//! ready (status, latency, the upstream's request id). Written straight to the log writer in the
//! bytes tracing-subscriber's text or JSON format would give it, without a span or an event going
//! through the subscriber; the request span is made only when something else inside the request
//! logs (or at once, when debug logging is on).

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use http::{Method, Uri};
use tracing::level_filters::LevelFilter;
use tracing::{Level, Span};

mod line;

use line::Line;

use super::writer::LogWriter;
use super::{QueryKeys, upstream_request_id};

/// The target the audit line has always had (tower-http's), so that RUST_LOG filters it as before.
const TARGET: &str = "tower_http::trace::on_response";

/// Where audit lines go when the subscriber writes plain text or JSON: the same writer, directly.
/// Unset for coloured output and before `init` (then the line is a tracing event, as it was).
pub(super) static SINK: OnceLock<Sink> = OnceLock::new();

/// The writer and the format of the subscriber `init` installed.
pub(super) struct Sink {
    pub(super) writer: LogWriter<std::io::Stderr>,
    pub(super) json: bool,
}

/// A route as the audit line names it (implemented where routes are known, so that this module
/// needs nothing of them).
pub(crate) trait Named: Send + Sync {
    /// The route's prefix.
    fn prefix(&self) -> &str;
    /// The name of the route's credential.
    fn credential(&self) -> &str;
}

/// What forwarding learned: the route (its prefix and credential) and the tenant, shared rather
/// than copied.
#[derive(Clone)]
pub(crate) struct Routed {
    pub(crate) route: Arc<dyn Named>,
    /// `None` for a route with a static API token, written as `-`.
    pub(crate) tenant: Option<Arc<str>>,
}

impl Routed {
    pub(super) fn fields(&self) -> [&str; 3] {
        [
            self.route.prefix(),
            self.route.credential(),
            self.tenant.as_deref().unwrap_or("-"),
        ]
    }
}

/// One request's audit record, from its arrival to its response head.
pub(crate) struct RequestLog {
    started: Instant,
    method: Method,
    uri: Uri,
    routed: Option<Routed>,
    /// The request span, when one was made (debug logging on, or the proxy's own endpoints).
    span: Option<Span>,
}

impl RequestLog {
    /// Starts the record of a request; `eager` makes its span at once (the proxy's own endpoints,
    /// whose handlers log in it). With debug logging on the span is always made, so that every
    /// event of the request (the libraries' among them) is in it.
    pub(crate) fn start(method: &Method, uri: &Uri, eager: bool) -> Self {
        let mut log = Self {
            started: Instant::now(),
            method: method.clone(),
            uri: uri.clone(),
            routed: None,
            span: None,
        };
        if eager || LevelFilter::current() >= LevelFilter::DEBUG {
            log.span = Some(log.make_span());
        }
        log
    }

    /// The span the request runs in, if it was made at the start.
    pub(crate) fn eager_span(&self) -> Option<&Span> {
        self.span.as_ref()
    }

    /// The request span, to log an event in: the one made at the start, or a new one with the
    /// fields known now.
    pub(crate) fn span(&self) -> Span {
        match &self.span {
            Some(span) => span.clone(),
            None => self.make_span(),
        }
    }

    /// What a later event needs to make the request span (the gzip decoder's failure, after the
    /// head was sent).
    pub(crate) fn spanner(&self) -> Spanner {
        Spanner {
            span: self.span.clone(),
            method: self.method.clone(),
            uri: self.uri.clone(),
            routed: self.routed.clone(),
        }
    }

    /// Fills in the route, credential and tenant once the request is matched.
    pub(crate) fn routed(&mut self, routed: Routed) {
        if let Some(span) = &self.span {
            record_routed(span, &routed);
        }
        self.routed = Some(routed);
    }

    fn make_span(&self) -> Span {
        make_span(&self.method, &self.uri, self.routed.as_ref())
    }

    /// When the request came.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// The request's method.
    pub(crate) fn method(&self) -> &Method {
        &self.method
    }

    /// The request's path.
    pub(crate) fn path(&self) -> &str {
        self.uri.path()
    }

    /// Writes the audit line for `response`'s head, ready at `at`, `latency` after the request
    /// came, if RUST_LOG enables it.
    pub(crate) fn finish<B>(self, response: &http::Response<B>, at: SystemTime, latency: Duration) {
        if !tracing::enabled!(target: TARGET, Level::INFO) {
            return;
        }
        // Whole microseconds: the nanoseconds beyond are noise, and the line writes faster.
        let latency_ms = latency.as_micros() as f64 / 1000.0;
        let status = response.status().as_u16();
        let request_id = upstream_request_id(response.headers());
        let Some(sink) = SINK.get() else {
            let span = self.span();
            tracing::info!(
                target: TARGET,
                parent: &span,
                status,
                latency_ms,
                upstream_request_id = request_id,
                "request"
            );
            return;
        };
        let in_span = span_enabled();
        let line = Line {
            method: &self.method,
            uri: &self.uri,
            routed: self.routed.as_ref().filter(|_| in_span),
            in_span,
            status,
            latency_ms,
            request_id,
        };
        BUFFER.with_borrow_mut(|buffer| {
            buffer.clear();
            let written = if sink.json {
                line.json(buffer, at)
            } else {
                line.text(buffer, at)
            };
            if written.is_ok() {
                sink.writer.write_line(buffer.as_bytes());
            }
            // A rare long line does not keep its memory for the thread's life.
            if buffer.capacity() > MAX_KEPT_BYTES {
                *buffer = String::new();
            }
        });
    }
}

/// The largest line buffer a thread keeps between lines.
const MAX_KEPT_BYTES: usize = 4096;

thread_local! {
    /// Each thread's buffer for the line being written: no allocation per line.
    static BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Whether RUST_LOG enables the request span (an audit line outside it has no span part).
fn span_enabled() -> bool {
    tracing::enabled!(target: "defender_token_proxy::telemetry", Level::INFO)
}

/// A request's span fields, kept to make its span later.
#[derive(Clone)]
pub(crate) struct Spanner {
    span: Option<Span>,
    method: Method,
    uri: Uri,
    routed: Option<Routed>,
}

impl Spanner {
    /// The request span.
    pub(crate) fn span(&self) -> Span {
        match &self.span {
            Some(span) => span.clone(),
            None => make_span(&self.method, &self.uri, self.routed.as_ref()),
        }
    }
}

fn make_span(method: &Method, uri: &Uri, routed: Option<&Routed>) -> Span {
    let span = tracing::info_span!(
        target: "defender_token_proxy::telemetry",
        "request",
        method = %method,
        path = %uri.path(),
        query = %QueryKeys(uri.query()),
        route = tracing::field::Empty,
        credential = tracing::field::Empty,
        tenant = tracing::field::Empty,
    );
    if let Some(routed) = routed {
        record_routed(&span, routed);
    }
    span
}

/// Records the three fields in one pass through the subscriber, where a `record` per field took
/// three.
fn record_routed(span: &Span, routed: &Routed) {
    let Some(fields) = span.metadata().map(tracing::Metadata::fields) else {
        return;
    };
    let (Some(route), Some(credential), Some(tenant)) = (
        fields.field("route"),
        fields.field("credential"),
        fields.field("tenant"),
    ) else {
        return;
    };
    let [route_value, credential_value, tenant_value] = routed.fields();
    span.record_all(&fields.value_set(&[
        (&route, Some(&route_value as &dyn tracing::Value)),
        (&credential, Some(&credential_value as &dyn tracing::Value)),
        (&tenant, Some(&tenant_value as &dyn tracing::Value)),
    ]));
}

#[cfg(test)]
mod tests;
