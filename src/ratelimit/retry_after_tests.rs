//! Unit tests of `parse_retry_after`: delay seconds and HTTP dates (RFC 9110 section 10.2.3),
//! capped at the configured maximum.

use super::*;

fn header(value: &'static str) -> HeaderValue {
    HeaderValue::from_static(value)
}

fn date(value: &str) -> SystemTime {
    httpdate::parse_http_date(value).unwrap()
}

#[test]
fn retry_after_parses_delay_seconds_with_or_without_whitespace() {
    let now = SystemTime::now();
    assert_eq!(
        parse_retry_after(&header("7"), now, UPSTREAM_RETRY_AFTER_MAX),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        parse_retry_after(&header(" 7 "), now, UPSTREAM_RETRY_AFTER_MAX),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        parse_retry_after(&header("0"), now, UPSTREAM_RETRY_AFTER_MAX),
        Some(Duration::ZERO)
    );
}

#[test]
fn an_upstream_retry_after_is_capped_at_ten_minutes() {
    let now = date("Sun, 06 Nov 1994 08:49:37 GMT");
    for value in [
        "601",
        "86400",
        "18446744073709551615",
        "99999999999999999999999999",
        "Mon, 07 Nov 1994 08:49:37 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        assert_eq!(
            parse_retry_after(&header(value), now, UPSTREAM_RETRY_AFTER_MAX),
            Some(UPSTREAM_RETRY_AFTER_MAX),
            "{value}"
        );
    }
    assert_eq!(UPSTREAM_RETRY_AFTER_MAX, Duration::from_secs(600));
    assert_eq!(
        parse_retry_after(&header("600"), now, UPSTREAM_RETRY_AFTER_MAX),
        Some(Duration::from_secs(600))
    );
}

#[test]
fn retry_after_parses_an_imf_fixdate_relative_to_now() {
    let now = date("Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(
        parse_retry_after(
            &header("Sun, 06 Nov 1994 08:50:37 GMT"),
            now,
            UPSTREAM_RETRY_AFTER_MAX
        ),
        Some(Duration::from_secs(60))
    );
}

#[test]
fn retry_after_parses_the_obsolete_date_forms() {
    let now = date("Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(
        parse_retry_after(
            &header("Sunday, 06-Nov-94 08:49:47 GMT"),
            now,
            UPSTREAM_RETRY_AFTER_MAX
        ),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        parse_retry_after(
            &header("Sun Nov  6 08:49:57 1994"),
            now,
            UPSTREAM_RETRY_AFTER_MAX
        ),
        Some(Duration::from_secs(20))
    );
}

#[test]
fn retry_after_date_in_the_past_is_no_delay() {
    let now = date("Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(
        parse_retry_after(
            &header("Sun, 06 Nov 1994 08:00:00 GMT"),
            now,
            UPSTREAM_RETRY_AFTER_MAX
        ),
        Some(Duration::ZERO)
    );
}

#[test]
fn retry_after_garbage_is_none() {
    let now = SystemTime::now();
    for garbage in [
        "",
        " ",
        "soon",
        "-1",
        "+7",
        "7.5",
        "7s",
        "1e3",
        "7 7",
        "Sun, 06 Nov",
    ] {
        assert_eq!(
            parse_retry_after(&header(garbage), now, UPSTREAM_RETRY_AFTER_MAX),
            None,
            "{garbage:?}"
        );
    }
    let opaque = HeaderValue::from_bytes(b"\xff7").unwrap();
    assert_eq!(
        parse_retry_after(&opaque, now, UPSTREAM_RETRY_AFTER_MAX),
        None
    );
}
