//! The audit line's bytes, as tracing-subscriber's text (`Full`, no colours) and JSON formats
//! write the event and span it replaces.

use std::fmt::{self, Write as _};
use std::time::SystemTime;

use http::{Method, Uri};

use super::super::QueryKeys;
use super::super::text::{Decimal, Micros, write_timestamp};
use super::{Routed, TARGET};

/// The audit line's fields.
pub(super) struct Line<'a> {
    pub(super) method: &'a Method,
    pub(super) uri: &'a Uri,
    pub(super) routed: Option<&'a Routed>,
    pub(super) in_span: bool,
    pub(super) status: u16,
    pub(super) latency_ms: f64,
    pub(super) request_id: &'a str,
}

impl Line<'_> {
    /// tracing-subscriber's `Full` text format without colours (`text::TextLine`).
    pub(super) fn text(&self, out: &mut String, now: SystemTime) -> fmt::Result {
        write_timestamp(out, now)?;
        out.push_str(" INFO ");
        if self.in_span {
            out.push_str("request{method=");
            out.push_str(self.method.as_str());
            out.push_str(" path=");
            out.push_str(self.uri.path());
            out.push_str(" query=");
            write!(out, "{}", QueryKeys(self.uri.query()))?;
            if let Some(routed) = self.routed {
                let names = [" route=", " credential=", " tenant="];
                for (name, value) in names.into_iter().zip(routed.fields()) {
                    out.push_str(name);
                    quoted(out, value)?;
                }
            }
            out.push_str("}: ");
        }
        out.push_str(TARGET);
        out.push_str(": request status=");
        out.push_str(Decimal::new(u64::from(self.status), false).as_str());
        out.push_str(" latency_ms=");
        match Micros::new(self.latency_ms) {
            Some(micros) => micros.write(out)?,
            None => write!(out, "{:?}", self.latency_ms)?,
        }
        out.push_str(" upstream_request_id=");
        quoted(out, self.request_id)?;
        out.push('\n');
        Ok(())
    }

    /// tracing-subscriber's JSON format with the event's fields flattened.
    pub(super) fn json(&self, out: &mut String, now: SystemTime) -> fmt::Result {
        out.push_str("{\"timestamp\":\"");
        write_timestamp(out, now)?;
        // `write_timestamp` ends with the text format's separating space.
        out.pop();
        out.push_str("\",\"level\":\"INFO\",\"message\":\"request\",\"status\":");
        out.push_str(Decimal::new(u64::from(self.status), false).as_str());
        out.push_str(",\"latency_ms\":");
        json_f64(out, self.latency_ms);
        out.push_str(",\"upstream_request_id\":");
        json_str(out, self.request_id);
        out.push_str(",\"target\":\"");
        out.push_str(TARGET);
        out.push('"');
        if self.in_span {
            out.push_str(",\"span\":");
            self.json_span(out);
            out.push_str(",\"spans\":[");
            self.json_span(out);
            out.push(']');
        }
        out.push_str("}\n");
        Ok(())
    }

    /// The span object: its fields in name order (serde_json's map), then its name.
    fn json_span(&self, out: &mut String) {
        let [route, credential, tenant] = match self.routed {
            Some(routed) => routed.fields().map(Some),
            None => [None; 3],
        };
        out.push('{');
        if let Some(credential) = credential {
            member(out, "credential", credential);
        }
        member(out, "method", self.method.as_str());
        member(out, "path", self.uri.path());
        out.push_str("\"query\":\"");
        let _ = write!(JsonEscaping(out), "{}", QueryKeys(self.uri.query()));
        out.push_str("\",");
        if let Some(route) = route {
            member(out, "route", route);
        }
        if let Some(tenant) = tenant {
            member(out, "tenant", tenant);
        }
        out.push_str("\"name\":\"request\"}");
    }
}

/// `"name":"value",`.
fn member(out: &mut String, name: &str, value: &str) {
    out.push('"');
    out.push_str(name);
    out.push_str("\":");
    json_str(out, value);
    out.push(',');
}

/// Writes through with JSON's string escapes.
struct JsonEscaping<'a>(&'a mut String);

impl fmt::Write for JsonEscaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// A string as `Debug` writes it, through the fast path when nothing needs escaping.
fn quoted(out: &mut String, value: &str) -> fmt::Result {
    if value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(value);
        out.push('"');
        Ok(())
    } else {
        write!(out, "{value:?}")
    }
}

/// A string as serde_json writes it.
pub(super) fn json_str(out: &mut String, value: &str) {
    out.push('"');
    escape_into(out, value);
    out.push('"');
}

/// `value` with serde_json's string escapes.
fn escape_into(out: &mut String, value: &str) {
    if !value.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(value);
        return;
    }
    for ch in value.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// A float as serde_json writes it.
pub(super) fn json_f64(out: &mut String, value: f64) {
    match serde_json::Number::from_f64(value) {
        Some(number) => {
            let _ = write!(out, "{number}");
        }
        None => out.push_str("null"),
    }
}
