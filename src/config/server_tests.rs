//! Unit tests of the `[server]` section: listeners and who may reach them, API keys, timeouts and
//! every number bounded to what the runtime holds, each refusal naming its key.

use std::path::Path;

use super::tests::{MINIMAL, env_with, error, parse};
use super::*;

#[test]
fn a_non_loopback_listener_needs_allow_remote() {
    let message = error(&format!("{MINIMAL}\n[server]\nlisten = \"0.0.0.0:8080\"\n"));
    assert!(
        message.contains("server.listen") && message.contains("allow_remote"),
        "{message}"
    );
    let message = error(&format!(
        "{MINIMAL}\n[server]\nlisten = \"0.0.0.0:8080\"\nallow_remote = true\n"
    ));
    assert!(
        message.contains("server.api_keys") && message.contains("authenticate"),
        "{message}"
    );
    let config = parse(&format!(
        "{MINIMAL}\n[server]\nlisten = \"0.0.0.0:8080\"\nallow_remote = true\napi_keys = [\"0123456789abcdef-key\"]\n"
    ))
    .unwrap();
    assert!(config.server.allow_remote);
    assert_eq!(config.server.api_keys.len(), 1);
}

#[test]
fn api_keys_must_be_long_enough_and_are_read_like_secrets() {
    let message = error(&format!("{MINIMAL}\n[server]\napi_keys = [\"short\"]\n"));
    assert!(
        message.contains("server.api_keys[0]") && message.contains("16"),
        "{message}"
    );
    let message = error(&format!(
        "{MINIMAL}\n[server]\napi_keys = [{{ env = \"UNSET\" }}]\n"
    ));
    assert!(
        message.contains("server.api_keys[0]") && message.contains("UNSET"),
        "{message}"
    );
}

#[test]
fn the_listen_override_is_checked_like_the_file() {
    let env = env_with(&[("SECRET", "s")]);
    let overrides = Overrides {
        listen: Some("10.1.2.3:80".parse().unwrap()),
    };
    let message = Config::from_toml(MINIMAL, "test.toml", Path::new("."), &overrides, &env)
        .unwrap_err()
        .to_string();
    assert!(message.contains("server.listen"), "{message}");
}

#[test]
fn zero_timeouts_are_refused() {
    let message = error(&format!("{MINIMAL}\n[server]\nupstream_timeout = \"0s\"\n"));
    assert!(message.contains("server.upstream_timeout"), "{message}");
    let config = parse(&format!("{MINIMAL}\n[server]\nupstream_timeout = \"2m\"\n")).unwrap();
    assert_eq!(
        config.server.upstream_timeout,
        std::time::Duration::from_secs(120)
    );
}

#[test]
fn a_remote_listener_may_rely_on_client_certificates_instead_of_api_keys() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tls = "\n[server.tls]\ncert = \"tls-server.pem\"\nkey = \"tls-server.key\"\n";
    let remote = "\n[server]\nlisten = \"0.0.0.0:8443\"\nallow_remote = true\n";
    let env = env_with(&[("SECRET", "s")]);
    let load =
        |text: &str| Config::from_toml(text, "t.toml", &fixtures, &Overrides::default(), &env);
    let without_client_ca = load(&format!("{MINIMAL}{remote}{tls}"))
        .unwrap_err()
        .to_string();
    assert!(
        without_client_ca.contains("server.api_keys") && without_client_ca.contains("client_ca"),
        "{without_client_ca}"
    );
    let config = load(&format!(
        "{MINIMAL}{remote}{tls}client_ca = \"tls-ca.pem\"\n"
    ))
    .unwrap();
    assert!(config.server.mutual_tls && config.server.tls.is_some());
    assert_eq!(config.files.len(), 3, "certificate, key and CA are watched");
    let bad_key = load(&format!("{MINIMAL}{tls}").replace("tls-server.key", "tls-server2.key"))
        .unwrap_err()
        .to_string();
    assert!(bad_key.contains("server.tls"), "{bad_key}");
}

#[test]
fn numbers_beyond_what_the_runtime_holds_are_refused_naming_the_key() {
    let huge = "9223372036854775807";
    for (key, value) in [
        ("max_concurrent_requests", huge.to_owned()),
        ("max_connections", huge.to_owned()),
        ("rate_limit_max_queue", huge.to_owned()),
        ("max_header_bytes", huge.to_owned()),
        ("replay_max_body_bytes", huge.to_owned()),
        ("header_read_timeout", "\"1000000000years\"".to_owned()),
        ("upstream_timeout", "\"25h\"".to_owned()),
        ("upstream_connect_timeout", "\"2days\"".to_owned()),
        ("token_timeout", "\"2days\"".to_owned()),
        ("shutdown_grace", "\"2days\"".to_owned()),
        ("watch_interval", "\"2days\"".to_owned()),
        ("rate_limit_max_wait", "\"2days\"".to_owned()),
    ] {
        let message = error(&format!("{MINIMAL}\n[server]\n{key} = {value}\n"));
        assert!(
            message.contains(&format!("server.{key}")) && message.contains("at most"),
            "{key}: {message}"
        );
    }
    let message = error(&format!("{MINIMAL}max_body_bytes = {huge}\n"));
    assert!(
        message.contains("routes[0].max_body_bytes") && message.contains("at most"),
        "{message}"
    );
    let config = parse(&format!(
        "{MINIMAL}max_body_bytes = 1099511627776\n[server]\nheader_read_timeout = \"24h\"\n\
         max_concurrent_requests = 2305843009213693951\nrate_limit_max_wait = \"0s\"\n"
    ))
    .unwrap();
    assert_eq!(config.server.limits.header_read_timeout, MAX_DURATION);
    assert_eq!(config.server.max_concurrent_requests, MAX_PERMITS);
}

#[test]
fn the_token_request_concurrency_is_sixteen_unless_set_between_one_and_its_bound() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(
        config.server.token_request_concurrency,
        super::DEFAULT_TOKEN_REQUEST_CONCURRENCY
    );
    let config = parse(&format!(
        "{MINIMAL}\n[server]\ntoken_request_concurrency = 256\n"
    ))
    .unwrap();
    assert_eq!(config.server.token_request_concurrency, 256);
    for (value, complaint) in [("0", "more than zero"), ("257", "at most 256")] {
        let message = error(&format!(
            "{MINIMAL}\n[server]\ntoken_request_concurrency = {value}\n"
        ));
        assert!(
            message.contains("server.token_request_concurrency") && message.contains(complaint),
            "{value}: {message}"
        );
    }
}
