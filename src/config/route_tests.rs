//! Unit tests of route validation: presets, upstreams, prefixes, credentials and rate limits.

use super::tests::{MINIMAL, error, parse, running};
use super::*;

#[test]
fn presets_set_upstream_and_scope_and_overrides_win() {
    let config = parse(&format!(
        "{MINIMAL}\n[[routes]]\nprefix = \"/eu\"\napi = \"mde\"\ncredential = \"app\"\n\
         upstream = \"https://eu.api.security.microsoft.com\"\nscope = \"https://api.security.microsoft.com/.default\"\n"
    ))
    .unwrap();
    let routes = running(&config);
    let mde = &routes[0];
    assert_eq!(
        mde.upstream.url().as_str(),
        "https://api.securitycenter.microsoft.com/"
    );
    assert_eq!(
        &*mde.scope,
        "https://api.securitycenter.microsoft.com/.default"
    );
    let eu = &routes[1];
    assert_eq!(
        eu.upstream.url().as_str(),
        "https://eu.api.security.microsoft.com/"
    );
    assert_eq!(&*eu.scope, "https://api.security.microsoft.com/.default");
    assert_ne!(
        mde.token_keys(),
        eu.token_keys(),
        "different scopes never share a token"
    );
}

#[test]
fn m365d_is_an_alias_of_xdr() {
    let config = parse(&MINIMAL.replace("api = \"mde\"", "api = \"m365d\"")).unwrap();
    assert_eq!(config.routes[0].api, Some(Api::Xdr));
}

#[test]
fn plain_http_is_allowed_only_to_loopback_hosts() {
    let with_upstream = |url: &str| {
        MINIMAL.replace(
            "api = \"mde\"",
            &format!("api = \"mde\"\nupstream = \"{url}\""),
        )
    };
    let message = error(&with_upstream("http://api.securitycenter.microsoft.com"));
    assert!(
        message.contains("routes[0].upstream") && message.contains("loopback"),
        "{message}"
    );
    for url in [
        "http://127.0.0.1:9000",
        "http://localhost:9000/base",
        "http://[::1]:9000",
    ] {
        parse(&with_upstream(url)).unwrap();
    }
    let message = error(&format!(
        "{MINIMAL}\n[cloud]\nauthority_host = \"http://login.example.com\"\n"
    ));
    assert!(message.contains("cloud.authority_host"), "{message}");
    let message = error(&with_upstream("https://user:pw@example.com"));
    assert!(message.contains("credentials in the URL"), "{message}");
}

#[test]
fn a_route_naming_an_unknown_credential_lists_the_known_ones() {
    let message = error(&MINIMAL.replace("credential = \"app\"", "credential = \"ap\""));
    assert!(
        message.contains("routes[0].credential") && message.contains("defined: app"),
        "{message}"
    );
}

#[test]
fn cloud_apps_needs_its_tenant_url() {
    let message = error(&MINIMAL.replace("api = \"mde\"", "api = \"mdca\""));
    assert!(
        message.contains("routes[0].upstream") && message.contains("portal.cloudappsecurity.com"),
        "{message}"
    );
}

#[test]
fn prefixes_are_checked_and_unique() {
    for (prefix, why) in [
        ("mde", "starts with '/'"),
        ("/-/x", "reserved"),
        ("/a/../b", "segments"),
        ("/", "starts with '/'"),
    ] {
        let message = error(&MINIMAL.replace("\"/mde\"", &format!("\"{prefix}\"")));
        assert!(
            message.contains("routes[0].prefix") && message.contains(why),
            "{prefix}: {message}"
        );
    }
    let message = error(&format!(
        "{MINIMAL}\n[[routes]]\nprefix = \"/mde/\"\napi = \"xdr\"\ncredential = \"app\"\n"
    ));
    assert!(
        message.contains("routes[1].prefix") && message.contains("earlier route"),
        "{message}"
    );
}

#[test]
fn rate_limits_take_microsofts_presets_or_explicit_numbers() {
    let config = parse(&format!("{MINIMAL}rate_limit = \"mde\"\n")).unwrap();
    let limits = config.routes[0].rate_limit.clone().unwrap().limits;
    assert_eq!(
        (limits.per_minute, limits.per_hour),
        (Some(100), Some(1500))
    );
    let config = parse(&format!("{MINIMAL}rate_limit = {{ per_minute = 45 }}\n")).unwrap();
    let limit = config.routes[0].rate_limit.clone().unwrap();
    assert_eq!(limit.limits.per_minute, Some(45));
    let message = error(&format!("{MINIMAL}rate_limit = \"fast\"\n"));
    assert!(
        message.contains("routes[0].rate_limit") && message.contains("mde"),
        "{message}"
    );
}

#[test]
fn routes_naming_one_budget_need_the_same_limits() {
    let second = "\n[[routes]]\nprefix = \"/mde2\"\napi = \"mde\"\ncredential = \"app\"\n";
    let shared = |per_minute: u32| {
        format!(
            "{MINIMAL}rate_limit = {{ per_minute = 10, budget = \"b\" }}\n\n\
             {second}rate_limit = {{ per_minute = {per_minute}, budget = \"b\" }}\n"
        )
    };
    let config = parse(&shared(10)).unwrap();
    assert_eq!(
        config.routes[0].rate_limit.as_ref().unwrap().family,
        config.routes[1].rate_limit.as_ref().unwrap().family
    );
    let message = error(&shared(20));
    assert!(
        message.contains("routes[1].rate_limit") && message.contains("same limits"),
        "{message}"
    );
}

#[test]
fn a_rate_limit_store_is_a_redis_url_whose_password_no_error_shows() {
    let with_store = |url: &str| format!("[server]\nrate_limit_store = \"{url}\"\n{MINIMAL}");
    let config = parse(&with_store("redis://:hunter2-secret@127.0.0.1:6390/2")).unwrap();
    let store = config.server.rate_limit_store.unwrap();
    assert_eq!(store.url.describe(), "redis://127.0.0.1:6390/2");
    assert_eq!(store.prefix, "dtp:");
    assert!(!format!("{store:?}").contains("hunter2"));
    for bad in [
        "http://:hunter2-secret@127.0.0.1:6379",
        "redis://:hunter2-secret@127.0.0.1:6379/x",
        "redis://:hunter2-secret@/0",
        "not a url hunter2-secret",
    ] {
        let message = error(&with_store(bad));
        assert!(message.contains("server.rate_limit_store"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
    let message = error(&format!("[server]\nrate_limit_prefix = \"x:\"\n{MINIMAL}"));
    assert!(message.contains("server.rate_limit_prefix"), "{message}");
}
