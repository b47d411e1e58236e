//! Unit tests of the environment-only mode: the credential and routes it makes from the AZURE_*
//! variables, and the variable it names when one is missing.

use super::env::from_env;
use super::tests::env_with;
use super::*;

#[test]
fn the_environment_mode_makes_one_credential_and_the_default_routes() {
    let env = env_with(&[
        ("AZURE_TENANT_ID", "6f1d0a52-8e2b-4c7a-9d3e-2a5b7c9e1f04"),
        ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
        ("AZURE_CLIENT_SECRET", "s"),
        ("AZURE_AUTHORITY_HOST", "login.microsoftonline.us/"),
    ]);
    let config = from_env(&Overrides::default(), &env).unwrap();
    let prefixes: Vec<&str> = config.routes.iter().map(|r| r.prefix.as_str()).collect();
    assert_eq!(prefixes, ["/mde", "/xdr", "/graph"]);
    assert_eq!(
        config.authority.as_str(),
        "https://login.microsoftonline.us/"
    );

    let with_mdca = |name: &str| match name {
        "MDCA_URL" => Some("https://contoso.us2.portal.cloudappsecurity.com".to_owned()),
        other => env(other),
    };
    let config = from_env(&Overrides::default(), &with_mdca).unwrap();
    assert_eq!(config.routes.last().unwrap().prefix, "/mdca");
}

#[test]
fn the_environment_mode_names_the_missing_variable() {
    let env = env_with(&[
        ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
        ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
    ]);
    let message = from_env(&Overrides::default(), &env)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("environment: AZURE_CLIENT_SECRET"),
        "{message}"
    );
    let env = env_with(&[
        ("AZURE_TENANT_ID", "common"),
        ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
        ("AZURE_CLIENT_SECRET", "s"),
    ]);
    let message = from_env(&Overrides::default(), &env)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("environment: AZURE_TENANT_ID"),
        "{message}"
    );
}
