//! Unit tests of the credential types in the configuration: each type's settings, the partner
//! routes' rules, and the Azure variables that fill in a workload or managed identity.

use std::path::Path;

use super::env::from_env;
use super::tests::running;
use super::*;
use crate::credential::{ClientAuth, ManagedIdentity};
use crate::route::Tenancy;

const APP: &str = "11111111-2222-3333-4444-555555555555";

fn parse_with(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = super::tests::env_with(vars);
    Config::from_toml(
        text,
        "test.toml",
        Path::new("."),
        &Overrides::default(),
        &env,
    )
}

fn credential(body: &str, route_extra: &str) -> String {
    format!(
        "[state]\ndir = \"/tmp/dtp-state-test\"\n[credentials.c]\n{body}\n[[routes]]\nprefix = \"/mde\"\napi = \"mde\"\ncredential = \"c\"\n{route_extra}\n"
    )
}

#[test]
fn a_partner_credential_serves_its_listed_tenants_through_a_tenant_segment() {
    let text = format!(
        r#"
[credentials.partner]
type = "client_secret"
tenants = ["6F1D0A52-8E2B-4C7A-9D3E-2A5B7C9E1F04", "fabrikam.onmicrosoft.com"]
client_id = "{APP}"
client_secret = {{ env = "S" }}

[[routes]]
prefix = "/customers/{{tenant}}/mde"
api = "mde"
credential = "partner"
"#
    );
    let config = parse_with(&text, &[("S", "x")]).unwrap();
    let routes = running(&config);
    let route = &routes[0];
    assert!(matches!(
        route.tenancy,
        Tenancy::PerRequest { header: false }
    ));
    let tenants: Vec<String> = route
        .token_keys()
        .iter()
        .map(|k| k.tenant.to_string())
        .collect();
    assert_eq!(
        tenants,
        [
            "6f1d0a52-8e2b-4c7a-9d3e-2a5b7c9e1f04",
            "fabrikam.onmicrosoft.com"
        ]
    );
    assert_eq!(
        route.split("/customers/fabrikam.onmicrosoft.com/mde/api/alerts"),
        Some((39, Some("fabrikam.onmicrosoft.com")))
    );
    assert_eq!(route.split("/customers//mde/api"), None);
    assert_eq!(route.split("/customers/x/mdex"), None);
}

#[test]
fn partner_and_tenant_segment_rules_are_enforced_naming_the_key() {
    let partner = format!(
        "type = \"client_secret\"\ntenants = [\"a.example\"]\nclient_id = \"{APP}\"\nclient_secret = \"x\""
    );
    let err = parse_with(&credential(&partner, ""), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("routes[0].prefix") && err.contains("{tenant}"),
        "{err}"
    );

    let single = format!(
        "type = \"client_secret\"\ntenant = \"a.example\"\nclient_id = \"{APP}\"\nclient_secret = \"x\""
    );
    let err = parse_with(&credential(&single, "tenant_header = true"), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("routes[0].tenant_header"), "{err}");

    let both = format!(
        "type = \"client_secret\"\ntenant = \"a.example\"\ntenants = [\"b.example\"]\nclient_id = \"{APP}\"\nclient_secret = \"x\""
    );
    let err = parse_with(&credential(&both, ""), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("credentials.c.tenants"), "{err}");

    let bad = format!(
        "type = \"client_secret\"\ntenants = [\"a.example\", \"not a/tenant\"]\nclient_id = \"{APP}\"\nclient_secret = \"x\""
    );
    let err = parse_with(&credential(&bad, "tenant_header = true"), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("credentials.c.tenants[1]"), "{err}");
}

#[test]
fn a_device_code_credential_keeps_its_sign_in_in_the_state_directory() {
    let text = credential(
        &format!("type = \"device_code\"\ntenant = \"organizations\"\nclient_id = \"{APP}\""),
        "",
    );
    let config = parse_with(&text, &[]).unwrap();
    let ClientAuth::User(file) = &config.credentials["c"].auth else {
        panic!("a user credential");
    };
    assert_eq!(file.path(), Path::new("/tmp/dtp-state-test/c.json"));

    let without_dir = text.replace("[state]\ndir = \"/tmp/dtp-state-test\"\n", "");
    let config = parse_with(&without_dir, &[("HOME", "/home/analyst")]).unwrap();
    let ClientAuth::User(file) = &config.credentials["c"].auth else {
        panic!("a user credential");
    };
    assert_eq!(
        file.path(),
        Path::new("/home/analyst/.local/state/defender-token-proxy/c.json")
    );
    let err = parse_with(&without_dir, &[]).unwrap_err().to_string();
    assert!(err.contains("state.dir"), "{err}");
}

#[test]
fn the_password_grant_is_accepted_with_a_warning() {
    let text = credential(
        &format!(
            "type = \"password\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"{APP}\"\nusername = \"analyst@contoso.onmicrosoft.com\"\npassword = {{ env = \"PW\" }}"
        ),
        "",
    );
    let config = parse_with(&text, &[("PW", "pw")]).unwrap();
    assert_eq!(config.credentials["c"].auth.kind(), "password");
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("multi-factor") && w.contains("credentials.c")),
        "{:?}",
        config.warnings
    );
    let common = text.replace(
        "contoso.onmicrosoft.com\"\nclient_id",
        "common\"\nclient_id",
    );
    let err = parse_with(&common, &[("PW", "pw")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("credentials.c.tenant"), "{err}");
}

#[test]
fn an_api_token_is_static_and_only_for_cloud_apps() {
    let body = "type = \"api_token\"\ntoken = { env = \"MDCA_TOKEN\" }";
    let text = credential(body, "").replace(
        "api = \"mde\"",
        "api = \"mdca\"\nupstream = \"https://contoso.us2.portal.cloudappsecurity.com\"",
    );
    let config = parse_with(&text, &[("MDCA_TOKEN", "k3y")]).unwrap();
    let routes = running(&config);
    let Tenancy::Static(token) = &routes[0].tenancy else {
        panic!("a static token");
    };
    assert!(token.authorization().is_sensitive());
    assert_eq!(token.authorization(), "Token k3y");
    assert!(routes[0].token_keys().is_empty());

    let err = parse_with(&credential(body, ""), &[("MDCA_TOKEN", "k3y")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("routes[0].credential") && err.contains("mdca"),
        "{err}"
    );
}

#[test]
fn a_workload_identity_takes_what_the_config_lacks_from_the_azure_variables() {
    let dir = std::env::temp_dir().join(format!("dtp-wi-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("azure-identity-token");
    std::fs::write(&token_file, "eyJ.fake.jwt").unwrap();
    let text = credential("type = \"workload_identity\"", "");
    let vars = [
        ("AZURE_TENANT_ID", "6f1d0a52-8e2b-4c7a-9d3e-2a5b7c9e1f04"),
        ("AZURE_CLIENT_ID", APP),
        ("AZURE_FEDERATED_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"),
    ];
    let config = parse_with(&text, &vars).unwrap();
    let c = &config.credentials["c"];
    assert_eq!(&*c.authority, "https://login.microsoftonline.us");
    assert_eq!(c.client_id, APP);
    assert!(matches!(&c.auth, ClientAuth::WorkloadIdentity { token_file: f } if *f == token_file));
    // A host without a scheme, as azure-identity's documentation writes it.
    let config = parse_with(
        &text,
        &[
            vars[0],
            vars[1],
            vars[2],
            ("AZURE_AUTHORITY_HOST", "login.microsoftonline.us"),
        ],
    )
    .unwrap();
    assert_eq!(
        &*config.credentials["c"].authority,
        "https://login.microsoftonline.us"
    );
    let err = parse_with(&text, &vars[..2]).unwrap_err().to_string();
    assert!(
        err.contains("credentials.c.token_file") && err.contains("AZURE_FEDERATED_TOKEN_FILE"),
        "{err}"
    );
}

#[test]
fn a_managed_identity_uses_app_service_when_its_variables_are_set_and_imds_otherwise() {
    let text = credential("type = \"managed_identity\"", "");
    let config = parse_with(&text, &[]).unwrap();
    assert!(matches!(
        &config.credentials["c"].auth,
        ClientAuth::ManagedIdentity(ManagedIdentity::Imds { endpoint })
            if endpoint.as_str() == "http://169.254.169.254/metadata/identity/oauth2/token"
    ));
    let config = parse_with(
        &text,
        &[
            ("IDENTITY_ENDPOINT", "http://localhost:42356/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ],
    )
    .unwrap();
    assert!(matches!(
        &config.credentials["c"].auth,
        ClientAuth::ManagedIdentity(ManagedIdentity::AppService { .. })
    ));
    let remote = credential(
        "type = \"managed_identity\"\nendpoint = \"http://203.0.113.7/token\"",
        "",
    );
    let err = parse_with(&remote, &[]).unwrap_err().to_string();
    assert!(err.contains("credentials.c.endpoint"), "{err}");
    let bad_id = credential(
        "type = \"managed_identity\"\nclient_id = \"not-a-guid\"",
        "",
    );
    let err = parse_with(&bad_id, &[]).unwrap_err().to_string();
    assert!(err.contains("credentials.c.client_id"), "{err}");
}

#[test]
fn a_tenant_placeholder_must_be_a_whole_segment_used_once() {
    for prefix in ["/c/{tenant}x/mde", "/{tenant}/{tenant}"] {
        let text = format!(
            "[credentials.p]\ntype = \"client_secret\"\ntenants = [\"a.example\"]\nclient_id = \"{APP}\"\nclient_secret = \"x\"\n[[routes]]\nprefix = \"{prefix}\"\napi = \"mde\"\ncredential = \"p\"\n"
        );
        let err = parse_with(&text, &[]).unwrap_err().to_string();
        assert!(err.contains("routes[0].prefix"), "{prefix}: {err}");
    }
}

#[test]
fn the_environment_alone_picks_a_workload_identity_or_else_a_managed_identity() {
    let dir = std::env::temp_dir().join(format!("dtp-env-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "eyJ.fake.jwt").unwrap();
    let load =
        |vars: &[(&str, &str)]| from_env(&Overrides::default(), &super::tests::env_with(vars));
    let token_file = token_file.display().to_string();
    let workload = load(&[
        ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
        ("AZURE_CLIENT_ID", APP),
        ("AZURE_FEDERATED_TOKEN_FILE", &token_file),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/"),
    ])
    .unwrap();
    assert_eq!(workload.credentials["env"].auth.kind(), "workload_identity");
    let managed = load(&[("AZURE_CLIENT_ID", APP)]).unwrap();
    let credential = &managed.credentials["env"];
    assert_eq!(credential.auth.kind(), "managed_identity");
    assert_eq!(credential.client_id, APP, "a user-assigned identity");
    // A tenant without a secret, certificate or token file is a mistake, not a managed identity.
    let err = load(&[
        ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
        ("AZURE_CLIENT_ID", APP),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("AZURE_CLIENT_SECRET"), "{err}");
}
