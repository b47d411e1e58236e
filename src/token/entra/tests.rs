//! Parsing Entra's answers, and the token endpoint's URL.

use super::*;

#[test]
fn expires_in_is_accepted_as_a_number_or_a_string() {
    let v2 =
        parse_success(br#"{"token_type":"Bearer","expires_in":3599,"access_token":"a"}"#).unwrap();
    assert_eq!(v2.expires_in, Duration::from_secs(3599));
    let v1 = parse_success(
        br#"{"token_type":"Bearer","expires_in":"3599","refresh_in":"1800","access_token":"a"}"#,
    )
    .unwrap();
    assert_eq!(v1.expires_in, Duration::from_secs(3599));
    assert_eq!(v1.refresh_in, Some(Duration::from_secs(1800)));
}

#[test]
fn a_managed_identity_expiry_time_gives_the_lifetime() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = format!(
        r#"{{"access_token":"a","refresh_token":"","expires_on":"{}","token_type":"Bearer"}}"#,
        now + 3600
    );
    let r = parse_success(body.as_bytes()).unwrap();
    assert!(r.expires_in <= Duration::from_secs(3600));
    assert!(r.expires_in >= Duration::from_secs(3590));
    assert!(r.refresh_token.is_none(), "an empty refresh token is none");
}

#[test]
fn a_token_response_without_a_usable_lifetime_is_malformed() {
    for body in [
        &br#"{"expires_in":0,"access_token":"a"}"#[..],
        br#"{"expires_in":"soon","access_token":"a"}"#,
        br#"{"access_token":"a"}"#,
        br#"{"expires_in":5,"access_token":"a","token_type":"pop"}"#,
        b"<html>",
    ] {
        assert!(matches!(parse_success(body), Err(TokenError::Malformed(_))));
    }
}

#[test]
fn an_absurd_lifetime_is_refused_as_malformed_rather_than_overflowing() {
    for expires_in in ["9223372036854775808", "18446744073709551615", "604801"] {
        let body = format!(r#"{{"expires_in":{expires_in},"access_token":"a"}}"#);
        let Err(TokenError::Malformed(reason)) = parse_success(body.as_bytes()) else {
            panic!("{expires_in} was accepted");
        };
        assert!(reason.contains("lifetime"), "{reason}");
    }
    let body = br#"{"expires_on":"18446744073709551615","access_token":"a"}"#;
    assert!(matches!(parse_success(body), Err(TokenError::Malformed(_))));
    assert!(parse_success(br#"{"expires_in":604800,"access_token":"a"}"#).is_ok());
}

#[test]
fn an_empty_token_or_one_expired_on_arrival_is_malformed() {
    let Err(TokenError::Malformed(reason)) =
        parse_success(br#"{"expires_in":3599,"access_token":""}"#)
    else {
        panic!("an empty access token was accepted");
    };
    assert!(reason.contains("empty"), "{reason}");
    let Err(TokenError::Malformed(reason)) =
        parse_success(br#"{"expires_on":"1000","access_token":"a"}"#)
    else {
        panic!("an expires_on in the past was accepted");
    };
    assert!(reason.contains("before the answer arrived"), "{reason}");
}

#[test]
fn a_refresh_in_of_zero_or_less_is_no_advice() {
    for refresh_in in ["0", "-5", "\"0\"", "\"-5\"", "-9223372036854775808"] {
        let body = format!(r#"{{"expires_in":3599,"refresh_in":{refresh_in},"access_token":"a"}}"#);
        let response = parse_success(body.as_bytes()).unwrap();
        assert_eq!(response.refresh_in, None, "{refresh_in}");
    }
    let body = br#"{"expires_in":3599,"refresh_in":18446744073709551615,"access_token":"a"}"#;
    assert_eq!(
        parse_success(body).unwrap().refresh_in,
        Some(Duration::from_secs(u64::MAX))
    );
}

#[test]
fn entra_errors_keep_the_code_and_the_first_line_of_the_description() {
    let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t\r\nCorrelation ID: c","error_codes":[7000215],"trace_id":"t","correlation_id":"c"}"#;
    let r = parse_error(StatusCode::UNAUTHORIZED, body);
    assert_eq!(r.codes, vec![7000215]);
    assert_eq!(
        r.description,
        "AADSTS7000215: Invalid client secret provided."
    );
    assert_eq!(r.correlation_id.as_deref(), Some("c"));
    assert_eq!(
        r.to_string(),
        "invalid_client: AADSTS7000215: Invalid client secret provided."
    );
}

#[test]
fn an_error_without_a_json_body_is_named_after_its_status() {
    let r = parse_error(StatusCode::BAD_GATEWAY, b"upstream down");
    assert_eq!(r.error, "bad_gateway");
    assert!(r.codes.is_empty());
}
