//! The text log line without colours, written directly: the same bytes as tracing-subscriber's
//! default (`Full`) format, for a fraction of its instructions (that one styles every piece through
//! `nu_ansi_term` and `core::fmt` even when colours are off; measured with callgrind).

use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Span and event fields as `DefaultFields` writes them without colours.
#[derive(Debug, Default)]
pub(super) struct TextFields;

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Visitor<'w> {
    writer: Writer<'w>,
    is_empty: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    /// Writes the separator and `name=`; false when the field is not written at all.
    fn start(&mut self, field: &Field) -> bool {
        let name = field.name();
        // tracing-log's metadata fields, already shown elsewhere by the default format.
        if self.result.is_err() || name.starts_with("log.") {
            return false;
        }
        let separator = if std::mem::replace(&mut self.is_empty, false) {
            ""
        } else {
            " "
        };
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = self
            .writer
            .write_str(separator)
            .and_then(|()| self.writer.write_str(name))
            .and_then(|()| self.writer.write_char('='));
        self.result.is_ok()
    }

    /// The message, with terminal control characters escaped as the default format does.
    fn message(&mut self, message: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        let separator = if std::mem::replace(&mut self.is_empty, false) {
            ""
        } else {
            " "
        };
        self.result = self.writer.write_str(separator).and_then(|()| {
            if self.writer.sanitizes_ansi_escapes() {
                Escaping(&mut self.writer).write_fmt(message)
            } else {
                self.writer.write_fmt(message)
            }
        });
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message(format_args!("{value}"));
        } else if value
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
        {
            // What `Debug` writes for a string with nothing to escape.
            if self.start(field) {
                self.result = self
                    .writer
                    .write_char('"')
                    .and_then(|()| self.writer.write_str(value))
                    .and_then(|()| self.writer.write_char('"'));
            }
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.start(field) {
            self.result = self.writer.write_str(Decimal::new(value, false).as_str());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.start(field) {
            let decimal = Decimal::new(value.unsigned_abs(), value < 0);
            self.result = self.writer.write_str(decimal.as_str());
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.start(field) {
            self.result = match Micros::new(value) {
                Some(micros) => micros.write(&mut self.writer),
                None => write!(self.writer, "{value:?}"),
            };
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.start(field) {
            self.result = self.writer.write_str(if value { "true" } else { "false" });
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_err() {
            return;
        }
        // Rare (not on the request path): the default visitor's own layout of the error's sources.
        let mut inner = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        inner.record_error(field, value);
        self.result = inner.finish();
        self.is_empty = false;
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message(format_args!("{value:?}"));
        } else if self.start(field) {
            self.result = write!(self.writer, "{value:?}");
        }
    }
}

/// Writes through, escaping the terminal control characters the default format escapes in
/// messages (C0 ESC, BEL, BS, FF, DEL and the C1 range).
struct Escaping<'a, 'w>(&'a mut Writer<'w>);

impl Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // 0xC2 starts the UTF-8 encoding of every C1 character.
        if !s
            .bytes()
            .any(|b| matches!(b, 0x07 | 0x08 | 0x0c | 0x1b | 0x7f | 0xc2))
        {
            return self.0.write_str(s);
        }
        for ch in s.chars() {
            match ch {
                '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' => {
                    write!(self.0, "\\x{:02x}", u32::from(ch))?;
                }
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", u32::from(ch))?,
                _ => self.0.write_char(ch)?,
            }
        }
        Ok(())
    }
}

/// An integer's decimal digits, written without `core::fmt`.
pub(super) struct Decimal {
    digits: [u8; 21],
    start: usize,
}

impl Decimal {
    pub(super) fn new(mut value: u64, negative: bool) -> Self {
        let mut digits = [0; 21];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        if negative {
            start -= 1;
            digits[start] = b'-';
        }
        Self { digits, start }
    }

    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[self.start..]).unwrap_or_default()
    }
}

/// A float that is a whole number of millionths (a latency in milliseconds, counted in
/// microseconds), written as `Debug` writes it without `core::fmt`'s float formatting.
pub(super) struct Micros {
    whole: u64,
    millionths: u64,
}

impl Micros {
    /// `None` when `Debug` would write `value` otherwise than with at most 6 decimals.
    pub(super) fn new(value: f64) -> Option<Self> {
        // Debug writes 1e-5 and the like with an exponent; below 1e9 the millionths are further
        // apart than two neighbouring floats, so the one that gives back `value` is its shortest
        // representation, which is what `Debug` writes.
        if !(1e-4..1e9).contains(&value) {
            return None;
        }
        let scaled = (value * 1e6).round();
        if scaled / 1e6 != value {
            return None;
        }
        // In range: `scaled` is a whole number below 1e15.
        let scaled = scaled as u64;
        Some(Self {
            whole: scaled / 1_000_000,
            millionths: scaled % 1_000_000,
        })
    }

    pub(super) fn write(&self, writer: &mut impl Write) -> fmt::Result {
        writer.write_str(Decimal::new(self.whole, false).as_str())?;
        let mut fraction = *b".000000";
        put_digits(&mut fraction[1..], self.millionths);
        // At least one decimal, as `Debug` writes `2.0`.
        let end = fraction[2..]
            .iter()
            .rposition(|&digit| digit != b'0')
            .map_or(2, |last| last + 3);
        writer.write_str(std::str::from_utf8(&fraction[..end]).map_err(|_| fmt::Error)?)
    }
}

/// Lines as tracing-subscriber's `Full` format writes them without colours: timestamp, level,
/// the spans with their fields, target, fields.
#[derive(Debug, Default)]
pub(super) struct TextLine {
    /// For records forwarded from the `log` crate, whose metadata the default format normalizes.
    fallback: Format<Full>,
}

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if meta.target() == "log" {
            return self.fallback.format_event(ctx, writer, event);
        }
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(match *meta.level() {
            Level::TRACE => "TRACE ",
            Level::DEBUG => "DEBUG ",
            Level::INFO => " INFO ",
            Level::WARN => " WARN ",
            Level::ERROR => "ERROR ",
        })?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// `2026-11-22T22:41:32.430555Z ` (UTC, microseconds), as tracing-subscriber's `SystemTime` timer.
/// Written by hand rather than with `humantime::format_rfc3339_micros`, which panics on a clock set
/// before 1970, fails past year 9999 (tracing-subscriber prints both) and goes through `core::fmt`
/// on every log line.
pub(super) fn write_timestamp(writer: &mut impl Write, now: SystemTime) -> fmt::Result {
    let (secs, micros) = match now.duration_since(UNIX_EPOCH) {
        Ok(since) => (
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            since.subsec_micros(),
        ),
        Err(before) => {
            let before = before.duration();
            let secs = -i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            match before.subsec_nanos() {
                0 => (secs, 0),
                nanos => (secs - 1, (1_000_000_000 - nanos) / 1_000),
            }
        }
    };
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let second_of_day = secs.rem_euclid(86_400);
    if (0..=9999).contains(&year) {
        let mut line = *b"0000-00-00T00:00:00.000000Z ";
        put_digits(&mut line[0..4], year.unsigned_abs());
        put_digits(&mut line[5..7], month);
        put_digits(&mut line[8..10], day);
        put_digits(&mut line[11..13], (second_of_day / 3600).unsigned_abs());
        put_digits(&mut line[14..16], (second_of_day / 60 % 60).unsigned_abs());
        put_digits(&mut line[17..19], (second_of_day % 60).unsigned_abs());
        put_digits(&mut line[20..26], u64::from(micros));
        return writer.write_str(std::str::from_utf8(&line).map_err(|_| fmt::Error)?);
    }
    if year > 9999 {
        write!(writer, "+{year}")?;
    } else {
        write!(writer, "{year:05}")?;
    }
    write!(
        writer,
        "-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z ",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Fills `out` with the last `out.len()` decimal digits of `value`, zero-padded.
fn put_digits(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Year, month and day of the proleptic Gregorian calendar for days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month.unsigned_abs(), day.unsigned_abs())
}

#[cfg(test)]
mod tests;
