//! Unit tests of the configuration: the example parses, and every kind of mistake is refused with
//! a message naming the file and the key. A little past 400 lines: its helpers serve the other
//! config test files, and what is left is one topic (the file, the server section, credentials).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::route::{Route, Routes};

/// The routes `config` runs with, in config order.
pub(super) fn running(config: &Config) -> Vec<Arc<Route>> {
    Routes::new(config.routes.clone())
        .unwrap()
        .iter()
        .cloned()
        .collect()
}

pub(super) const MINIMAL: &str = r#"
[credentials.app]
type = "client_secret"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = { env = "SECRET" }

[[routes]]
prefix = "/mde"
api = "mde"
credential = "app"
"#;

pub(super) fn env_with(
    vars: &[(&str, &str)],
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    let env = env_with(&[("SECRET", "s3cret")]);
    Config::from_toml(
        text,
        "test.toml",
        Path::new("."),
        &Overrides::default(),
        &env,
    )
}

pub(super) fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn the_documented_example_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/defender-token-proxy.example.toml");
    let env = Arc::new(env_with(&[("AZURE_CLIENT_SECRET", "s")]));
    let config = ConfigSource::file(&path, Overrides::default(), env)
        .load()
        .unwrap();
    let prefixes: Vec<&str> = config.routes.iter().map(|r| r.prefix.as_str()).collect();
    assert_eq!(prefixes, ["/mde", "/xdr", "/graph", "/mdca"]);
    assert_eq!(config.server.listen, DEFAULT_LISTEN);
    assert_eq!(
        config.authority.as_str(),
        "https://login.microsoftonline.com/"
    );
    assert!(config.warnings.is_empty());
    assert_eq!(config.files[0].path, path, "the config file is watched");
    assert!(config.source.is_some());
}

#[test]
fn unknown_keys_are_refused_naming_the_file_and_key() {
    let message = error(&format!("{MINIMAL}\n[server]\nlisten_port = 8080\n"));
    assert!(message.starts_with("test.toml:"), "{message}");
    assert!(message.contains("listen_port"), "{message}");
    let message = error(&MINIMAL.replace(
        "credential = \"app\"",
        "credential = \"app\"\nprefx = \"/x\"",
    ));
    assert!(message.contains("prefx"), "{message}");
}

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
fn secret_files_are_watched_and_lifecycle_settings_parse() {
    let dir = std::env::temp_dir().join(format!("dtp-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
    std::fs::write(dir.join("key"), "0123456789abcdef-key\n").unwrap();
    let text = MINIMAL.replace("{ env = \"SECRET\" }", "{ file = \"secret\" }")
        + "\n[server]\napi_keys = [{ file = \"key\" }]\nshutdown_grace = \"3s\"\nwatch_interval = \"250ms\"\n\n[admin]\nlisten = \"0.0.0.0:9901\"\n";
    let config =
        Config::from_toml(&text, "t.toml", &dir, &Overrides::default(), &|_| None).unwrap();
    let files: Vec<_> = config.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(files, [dir.join("key"), dir.join("secret")]);
    assert_eq!(
        config.files[0],
        WatchedFile::read(dir.join("key")),
        "as read"
    );
    assert_eq!(
        config.server.shutdown_grace,
        std::time::Duration::from_secs(3)
    );
    assert_eq!(
        config.server.watch_interval,
        std::time::Duration::from_millis(250)
    );
    assert_eq!(config.admin_listen, Some("0.0.0.0:9901".parse().unwrap()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_changed_secret_changes_the_credential_fingerprint() {
    let a = parse(MINIMAL).unwrap();
    let env = env_with(&[("SECRET", "rotated")]);
    let b = Config::from_toml(
        MINIMAL,
        "test.toml",
        Path::new("."),
        &Overrides::default(),
        &env,
    )
    .unwrap();
    let c = parse(MINIMAL).unwrap();
    assert_ne!(
        a.credentials["app"].fingerprint,
        b.credentials["app"].fingerprint
    );
    assert_eq!(
        a.credentials["app"].fingerprint,
        c.credentials["app"].fingerprint
    );
    assert_ne!(running(&a)[0].token_keys(), running(&b)[0].token_keys());
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
fn an_authority_host_without_scheme_or_with_a_trailing_slash_is_normalised() {
    for host in [
        "login.microsoftonline.us",
        "https://login.microsoftonline.us/",
    ] {
        let config = parse(&format!(
            "{MINIMAL}\n[cloud]\nauthority_host = \"{host}\"\n"
        ))
        .unwrap();
        assert_eq!(
            config.authority.as_str(),
            "https://login.microsoftonline.us/"
        );
    }
}

#[test]
fn the_cloud_picks_the_authority_and_hosts() {
    let config = parse(&format!("{MINIMAL}\n[cloud]\nname = \"gcc-high\"\n")).unwrap();
    assert_eq!(
        config.authority.as_str(),
        "https://login.microsoftonline.us/"
    );
    assert_eq!(
        config.routes[0].upstream.url().as_str(),
        "https://api-gov.securitycenter.microsoft.us/"
    );
    let message = error(&format!("{MINIMAL}\n[cloud]\nname = \"mooncake\"\n"));
    assert!(message.contains("mooncake"), "{message}");
}

#[test]
fn tenants_and_client_ids_are_validated() {
    let message = error(&MINIMAL.replace("contoso.onmicrosoft.com", "common"));
    assert!(
        message.contains("credentials.app.tenant") && message.contains("client credentials"),
        "{message}"
    );
    let message = error(&MINIMAL.replace("contoso.onmicrosoft.com", "not a tenant"));
    assert!(message.contains("credentials.app.tenant"), "{message}");
    parse(&MINIMAL.replace(
        "contoso.onmicrosoft.com",
        "6f1d0a52-8e2b-4c7a-9d3e-2a5b7c9e1f04",
    ))
    .unwrap();
    let message = error(&MINIMAL.replace("11111111-2222-3333-4444-555555555555", "my-app"));
    assert!(
        message.contains("credentials.app.client_id") && message.contains("GUID"),
        "{message}"
    );
}

#[test]
fn a_missing_secret_names_the_key_and_the_variable() {
    let env = env_with(&[]);
    let message = Config::from_toml(
        MINIMAL,
        "test.toml",
        Path::new("."),
        &Overrides::default(),
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("credentials.app.client_secret") && message.contains("SECRET"),
        "{message}"
    );
}

#[test]
fn a_literal_secret_works_with_a_warning() {
    let config = parse(&MINIMAL.replace("{ env = \"SECRET\" }", "\"literal\"")).unwrap();
    assert!(config.warnings[0].contains("credentials.app.client_secret"));
    assert!(!config.warnings[0].contains("literal\""));
}

#[test]
fn a_certificate_credential_loads_its_pem_relative_to_the_config() {
    let text = r#"
[credentials.cert]
type = "client_certificate"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
certificate = { file = "fixtures/app-cert.pem" }
algorithm = "RS256"

[[routes]]
prefix = "/mde"
api = "mde"
credential = "cert"
"#;
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let config =
        Config::from_toml(text, "t.toml", &base, &Overrides::default(), &|_| None).unwrap();
    assert_eq!(config.credentials["cert"].auth.kind(), "client_certificate");
    let missing = Config::from_toml(
        text,
        "t.toml",
        Path::new("/nonexistent"),
        &Overrides::default(),
        &|_| None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("credentials.cert.certificate"),
        "{missing}"
    );
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
fn a_parse_error_names_line_column_and_key_and_never_quotes_a_line_that_may_hold_a_secret() {
    let leaks = [
        MINIMAL.replace(
            "client_secret = { env = \"SECRET\" }",
            "client_secret = \"literal-s3cret-value",
        ),
        MINIMAL.replace(
            "client_secret = { env = \"SECRET\" }",
            "client_secret = [\"literal-s3cret-value\"]",
        ),
        format!("{MINIMAL}\n[server]\napi_keys = \"literal-s3cret-value\"\n"),
        format!("{MINIMAL}\n[server]\napi_keys = [\n  \"literal-s3cret-value\" 1,\n]\n"),
        format!("{MINIMAL}\n[server]\napi_keys = [31415926535897932384]\n"),
    ];
    for text in &leaks {
        let message = error(text);
        assert!(
            message.starts_with("test.toml: line ") && message.contains(", column "),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
        assert!(!message.contains("31415926535897932384"), "{message}");
    }
    let message = error(&leaks[0]);
    assert!(
        message.contains("line 6, column 38, key credentials.app.client_secret"),
        "{message}"
    );
    let message = error(&leaks[2]);
    assert!(message.contains("key server.api_keys"), "{message}");
    // A line that cannot hold a secret is quoted, with its key.
    let message = error(&format!("{MINIMAL}\n[server]\nlisten_port = 8080\n"));
    assert!(
        message.contains("key server.listen_port") && message.contains("`listen_port = 8080`"),
        "{message}"
    );
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
