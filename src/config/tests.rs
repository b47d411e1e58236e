//! Unit tests of the configuration: the example parses, and every kind of mistake is refused with
//! a message naming the file and the key; its helpers serve the other config test files. The
//! `[server]` section's own tests are in `server_tests`.

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
