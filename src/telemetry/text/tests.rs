//! The text formatter against tracing-subscriber's own, line for line, and its number writing.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// An error with a source, which the default format lists after it.
#[derive(Debug)]
struct Outer(io::Error);

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot save")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn emit_samples() {
    let span = tracing::info_span!(
        "request",
        method = %"GET",
        path = %"/mde/api/alerts",
        query = %"$top&$filter",
        route = tracing::field::Empty,
    );
    let _entered = span.enter();
    span.record("route", "/mde");
    tracing::info!(
        status = 200u16,
        latency_ms = 0.25,
        upstream_request_id = "abc-1",
        "request"
    );
    let inner = tracing::debug_span!("inner", n = 3u8);
    inner.in_scope(|| {
        tracing::warn!(kind = "x", error = %"a \"quoted\" cause", "request failed");
    });
    let error = Outer(io::Error::other("disk full"));
    tracing::error!(
        error = &error as &(dyn std::error::Error + 'static),
        "wrapped"
    );
    drop(_entered);
    tracing::trace!(
        text = "tab\tand \"quote\" and é",
        n = -5i64,
        big = u64::MAX,
        yes = true,
        r#type = "t",
        "escapes \x1b[31m here \u{85} there {}",
        7
    );
    tracing::info!(only = "fields");
    tracing::debug!("");
}

/// What `emit_samples` logs through the formatter `subscriber` builds, timestamps cut off.
fn lines<S>(subscriber: impl FnOnce(Capture) -> S) -> Vec<String>
where
    S: Subscriber + Send + Sync + 'static,
{
    let capture = Capture::default();
    tracing::subscriber::with_default(subscriber(capture.clone()), emit_samples);
    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    text.lines().map(|line| line[28..].to_owned()).collect()
}

#[test]
fn lines_are_byte_for_byte_those_of_the_default_format_without_colours() {
    let builder = |capture: Capture| {
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(Level::TRACE)
            .with_writer(move || capture.clone())
    };
    let default = lines(|capture| builder(capture).finish());
    let ours = lines(|capture| {
        builder(capture)
            .fmt_fields(TextFields)
            .event_format(TextLine::default())
            .finish()
    });
    assert_eq!(default.len(), 6, "{default:#?}");
    assert_eq!(ours, default);
}

#[test]
fn floats_in_millionths_are_written_as_debug_writes_them() {
    let mut values: Vec<f64> = (0..200_000).map(|i| f64::from(i) / 1000.0).collect();
    values.extend((0..20_000).map(|i| f64::from(i) * 0.000_037));
    values.extend([
        0.1 + 0.2,
        1e-4,
        9.9e-5,
        0.452_598,
        2.0,
        123_456.789,
        999_999_999.999_999,
        1e9,
        -1.5,
        f64::NAN,
        f64::INFINITY,
    ]);
    for value in values {
        let written = match Micros::new(value) {
            Some(micros) => {
                let mut out = String::new();
                micros.write(&mut Writer::new(&mut out)).unwrap();
                out
            }
            None => format!("{value:?}"),
        };
        assert_eq!(written, format!("{value:?}"));
    }
    assert!(Micros::new(0.32).is_some(), "the fast path is taken");
}

#[test]
fn timestamps_are_utc_with_microseconds() {
    let at = |secs: i64, micros: u64| {
        let offset = Duration::from_secs(secs.unsigned_abs());
        let time = if secs < 0 {
            UNIX_EPOCH - offset + Duration::from_micros(micros)
        } else {
            UNIX_EPOCH + offset + Duration::from_micros(micros)
        };
        let mut out = String::new();
        write_timestamp(&mut out, time).unwrap();
        out
    };
    assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z ");
    assert_eq!(at(951_782_400, 123_456), "2000-02-29T00:00:00.123456Z ");
    assert_eq!(at(1_795_388_492, 430_555), "2026-11-22T23:01:32.430555Z ");
    assert_eq!(at(-1, 500_000), "1969-12-31T23:59:59.500000Z ");
    assert_eq!(at(253_402_300_800, 1), "+10000-01-01T00:00:00.000001Z ");
}
