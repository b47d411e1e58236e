//! The audit line as written directly, against what tracing-subscriber writes for the span and
//! event it replaces, in both formats.

use std::io;
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use tracing::Subscriber;

use super::super::text::{TextFields, TextLine};
use super::line::{json_f64, json_str};
use super::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Fixed(&'static str, &'static str);

impl Named for Fixed {
    fn prefix(&self) -> &str {
        self.0
    }

    fn credential(&self) -> &str {
        self.1
    }
}

/// The span and event the proxy logged before this module, through `subscriber`: the reference.
fn reference<S>(subscriber: S, capture: &Capture, uri: &Uri, routed: Option<&Routed>) -> String
where
    S: Subscriber + Send + Sync + 'static,
{
    tracing::subscriber::with_default(subscriber, || {
        let span = make_span(&Method::GET, uri, routed);
        let _entered = span.enter();
        tracing::info!(
            target: TARGET,
            status = 200u16,
            latency_ms = 0.452,
            upstream_request_id = "abc-1",
            "request"
        );
    });
    String::from_utf8(capture.0.lock().unwrap().clone()).unwrap()
}

fn ours(json: bool, uri: &Uri, routed: Option<&Routed>) -> String {
    let line = Line {
        method: &Method::GET,
        uri,
        routed,
        in_span: true,
        status: 200,
        latency_ms: 0.452,
        request_id: "abc-1",
    };
    let mut out = String::new();
    let now = UNIX_EPOCH + std::time::Duration::from_micros(1_795_388_492_430_555);
    if json {
        line.json(&mut out, now).unwrap();
    } else {
        line.text(&mut out, now).unwrap();
    }
    out
}

/// The line without its timestamp, which differs.
fn untimed(line: &str, json: bool) -> String {
    if json {
        let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
        value.as_object_mut().unwrap().remove("timestamp");
        value.to_string()
    } else {
        line[28..].to_owned()
    }
}

fn cases() -> Vec<(Uri, Option<Routed>)> {
    let routed = Routed {
        route: Arc::new(Fixed("/mde", "main")),
        tenant: Some("contoso.onmicrosoft.com".into()),
    };
    let partner = Routed {
        route: Arc::new(Fixed("/partner/{tenant}", "p\"x")),
        tenant: None,
    };
    vec![
        (
            "/mde/api/alerts?$top=5&$filter=x".parse().unwrap(),
            Some(routed),
        ),
        ("/partner/t1/api?a=1&&b".parse().unwrap(), Some(partner)),
        ("/-/ready".parse().unwrap(), None),
    ]
}

#[test]
fn the_text_line_is_byte_for_byte_the_one_the_span_and_event_gave() {
    for (uri, routed) in cases() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .fmt_fields(TextFields)
            .event_format(TextLine::default())
            .finish();
        let expected = reference(subscriber, &capture, &uri, routed.as_ref());
        let written = ours(false, &uri, routed.as_ref());
        assert_eq!(untimed(&written, false), untimed(&expected, false));
        assert!(
            written.starts_with("2026-11-22T23:01:32.430555Z  INFO "),
            "{written}"
        );
    }
}

#[test]
fn the_json_line_has_the_fields_and_order_the_span_and_event_gave() {
    for (uri, routed) in cases() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .json()
            .flatten_event(true)
            .finish();
        let expected = reference(subscriber, &capture, &uri, routed.as_ref());
        let written = ours(true, &uri, routed.as_ref());
        // Byte for byte after the timestamp, which is where the two lines' members begin to agree.
        let after = |line: &str| line[line.find("\"level\"").unwrap()..].to_owned();
        assert_eq!(after(&written), after(&expected));
        assert_eq!(untimed(&written, true), untimed(&expected, true));
        assert!(
            written.starts_with("{\"timestamp\":\"2026-11-22T23:01:32.430555Z\","),
            "{written}"
        );
    }
}

#[test]
fn json_strings_are_escaped_as_serde_json_escapes_them() {
    for value in ["plain", "a\"b\\c", "tab\tnew\nline\u{1}", "é\u{7f}"] {
        let mut out = String::new();
        json_str(&mut out, value);
        assert_eq!(out, serde_json::to_string(value).unwrap());
    }
    for value in [0.452, 2.0, 1234.5] {
        let mut out = String::new();
        json_f64(&mut out, value);
        assert_eq!(out, serde_json::to_string(&value).unwrap());
    }
}
