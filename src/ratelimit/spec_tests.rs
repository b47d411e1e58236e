//! Unit tests of the rate limits as configured: presets, explicit limits, named budgets, and
//! what Microsoft counts each by.

use super::*;
use crate::ratelimit::limits;

fn custom(per_minute: Option<u32>, per_hour: Option<u32>, budget: Option<&str>) -> RateLimitSpec {
    RateLimitSpec::Custom(CustomLimits {
        per_minute,
        per_hour,
        window: None,
        budget: budget.map(str::to_owned),
    })
}

#[test]
fn every_preset_resolves_to_its_documented_limits_and_what_microsoft_counts_it_by() {
    let expected = [
        ("mde", Some(100), Some(1500), false),
        ("advanced-hunting", Some(45), Some(1500), true),
        ("graph-hunting", Some(45), None, true),
        ("xdr-incidents", Some(50), Some(1500), false),
        ("mdca", Some(30), None, true),
        ("graph-security", Some(150), None, false),
        ("live-response", Some(10), None, false),
        ("investigation-package", Some(2), Some(120), false),
    ];
    assert_eq!(expected.len(), PRESETS.len());
    for (name, per_minute, per_hour, per_tenant) in expected {
        assert_eq!(
            RateLimitSpec::Preset(name.to_owned()).resolve(),
            Ok(RateLimit {
                limits: limits(per_minute, per_hour),
                family: name.into(),
                per_tenant,
            }),
            "{name}"
        );
    }
}

#[test]
fn unknown_preset_is_refused_naming_the_known_ones() {
    let error = RateLimitSpec::Preset("defender".to_owned())
        .resolve()
        .unwrap_err();
    assert_eq!(
        error,
        "unknown rate limit preset \"defender\" (known: mde, advanced-hunting, graph-hunting, \
         xdr-incidents, mdca, graph-security, live-response, investigation-package)"
    );
}

#[test]
fn custom_limits_resolve_to_themselves_in_a_family_named_by_them() {
    for (per_minute, per_hour, family) in [
        (Some(100), Some(1500), "custom-100m-1500h"),
        (Some(1), None, "custom-1m"),
        (None, Some(1), "custom-1h"),
    ] {
        assert_eq!(
            custom(per_minute, per_hour, None).resolve(),
            Ok(RateLimit {
                limits: limits(per_minute, per_hour),
                family: family.into(),
                per_tenant: false,
            })
        );
    }
}

#[test]
fn a_named_budget_is_its_own_family_counted_per_app_and_tenant() {
    let limit = custom(Some(10), None, Some("shared-mde"))
        .resolve()
        .unwrap();
    assert_eq!(&*limit.family, "budget-shared-mde");
    assert!(!limit.per_tenant);
    for bad in ["", "two words", "a/b", &"x".repeat(65)] {
        let error = custom(Some(10), None, Some(bad)).resolve().unwrap_err();
        assert!(error.contains("a budget name is"), "{bad:?}: {error}");
    }
}

#[test]
fn custom_limits_without_any_limit_or_with_a_zero_are_refused() {
    let resolve = |per_minute, per_hour| custom(per_minute, per_hour, None).resolve().unwrap_err();
    assert!(resolve(None, None).contains("needs per_minute, per_hour or both"));
    assert!(resolve(Some(0), Some(1500)).contains("per_minute must be greater than zero"));
    assert!(resolve(Some(100), Some(0)).contains("per_hour must be greater than zero"));
    assert!(resolve(None, Some(0)).contains("per_hour must be greater than zero"));
}

#[derive(Debug, Deserialize)]
struct Route {
    rate_limit: RateLimitSpec,
}

fn parse(toml_text: &str) -> Result<RateLimitSpec, toml::de::Error> {
    toml::from_str::<Route>(toml_text).map(|route| route.rate_limit)
}

#[test]
fn config_accepts_a_preset_name_or_explicit_limits_with_an_optional_budget() {
    assert_eq!(
        parse(r#"rate_limit = "mde""#).unwrap(),
        RateLimitSpec::Preset("mde".to_owned())
    );
    assert_eq!(
        parse("rate_limit = { per_minute = 100, per_hour = 1500 }").unwrap(),
        custom(Some(100), Some(1500), None)
    );
    assert_eq!(
        parse("rate_limit = { per_hour = 1500 }").unwrap(),
        custom(None, Some(1500), None)
    );
    assert_eq!(
        parse(r#"rate_limit = { per_minute = 5, budget = "b" }"#).unwrap(),
        custom(Some(5), None, Some("b"))
    );
}

#[test]
fn config_refuses_unknown_limit_keys_and_negative_limits() {
    assert!(parse("rate_limit = { per_second = 5 }").is_err());
    assert!(parse("rate_limit = { per_minute = -1 }").is_err());
    assert!(parse("rate_limit = 100").is_err());
}

#[test]
fn a_custom_window_shortens_the_one_per_minute_counts_over_and_names_its_family() {
    let spec: RateLimitSpec =
        toml::from_str::<toml::Table>("l = { per_minute = 5, window = \"2s\" }").unwrap()["l"]
            .clone()
            .try_into()
            .unwrap();
    let limit = spec.resolve().unwrap();
    assert_eq!(limit.limits.per_minute, Some(5));
    assert_eq!(limit.limits.minute, Duration::from_secs(2));
    assert_eq!(&*limit.family, "custom-5per2000ms");
}

#[test]
fn a_custom_window_needs_per_minute_and_stays_between_a_second_and_a_minute() {
    for (window, per_minute) in [("500ms", Some(5)), ("61s", Some(5)), ("2s", None)] {
        let spec = RateLimitSpec::Custom(CustomLimits {
            per_minute,
            per_hour: Some(10),
            window: Some(humantime::parse_duration(window).unwrap()),
            budget: None,
        });
        assert!(spec.resolve().unwrap_err().contains("window"), "{window}");
    }
}
