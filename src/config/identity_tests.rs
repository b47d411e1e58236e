//! Unit tests of `[identity_endpoint]`: what it serves, and each mistake refused naming its key.

use super::tests::{MINIMAL, error, parse};

const SECTION: &str =
    "\n[identity_endpoint]\nsecret = \"identity-header-0123456789\"\ncredential = \"app\"\n";

#[test]
fn the_identity_endpoint_serves_the_resources_of_its_credentials_routes() {
    let text = format!(
        "{MINIMAL}\n[[routes]]\nprefix = \"/graph\"\napi = \"graph\"\ncredential = \"app\"\n\
         \n[[routes]]\nprefix = \"/mde2\"\napi = \"mde\"\ncredential = \"app\"\n{SECTION}"
    );
    let config = parse(&text).unwrap();
    let endpoint = config.identity_endpoint.expect("the section is read");
    let resources: Vec<(&str, &str)> = endpoint
        .resources
        .iter()
        .map(|(r, s)| (r.as_str(), &**s))
        .collect();
    assert_eq!(
        resources,
        [
            (
                "https://api.securitycenter.microsoft.com",
                "https://api.securitycenter.microsoft.com/.default"
            ),
            (
                "https://graph.microsoft.com",
                "https://graph.microsoft.com/.default"
            ),
        ]
    );
    assert_eq!(&*endpoint.credential.name, "app");
    assert!(!format!("{:?}", endpoint.secret).contains("identity-header"));
    assert!(parse(MINIMAL).unwrap().identity_endpoint.is_none());
}

#[test]
fn a_short_identity_secret_is_refused_naming_the_key() {
    let message = error(&format!(
        "{MINIMAL}{}",
        SECTION.replace("identity-header-0123456789", "too-short")
    ));
    assert!(
        message.contains("identity_endpoint.secret") && message.contains("16"),
        "{message}"
    );
    let message = error(&format!(
        "{MINIMAL}{}",
        SECTION.replace(
            "\"identity-header-0123456789\"",
            "{ env = \"UNSET_VARIABLE\" }"
        )
    ));
    assert!(message.contains("identity_endpoint.secret"), "{message}");
}

#[test]
fn an_unknown_api_token_or_unused_identity_credential_is_refused_naming_the_key() {
    let unknown = error(&format!(
        "{MINIMAL}{}",
        SECTION.replace("credential = \"app\"", "credential = \"nope\"")
    ));
    assert!(
        unknown.contains("identity_endpoint.credential") && unknown.contains("\"nope\""),
        "{unknown}"
    );
    let api_token = error(&format!(
        "{MINIMAL}\n[credentials.legacy]\ntype = \"api_token\"\ntoken = \"legacy-token-value\"\n\
         \n[[routes]]\nprefix = \"/mdca\"\napi = \"mdca\"\ncredential = \"legacy\"\n\
         upstream = \"https://contoso.us2.portal.cloudappsecurity.com\"\n{}",
        SECTION.replace("credential = \"app\"", "credential = \"legacy\"")
    ));
    assert!(
        api_token.contains("identity_endpoint.credential") && api_token.contains("api_token"),
        "{api_token}"
    );
    let unused = error(&format!(
        "{MINIMAL}\n[credentials.other]\ntype = \"client_secret\"\ntenant = \"contoso.onmicrosoft.com\"\n\
         client_id = \"11111111-2222-3333-4444-555555555555\"\nclient_secret = {{ env = \"SECRET\" }}\n{}",
        SECTION.replace("credential = \"app\"", "credential = \"other\"")
    ));
    assert!(
        unused.contains("identity_endpoint.credential") && unused.contains("no route uses"),
        "{unused}"
    );
    let partner = error(&format!(
        "{MINIMAL}\n[credentials.msp]\ntype = \"client_secret\"\n\
         tenants = [\"contoso.onmicrosoft.com\", \"fabrikam.onmicrosoft.com\"]\n\
         client_id = \"11111111-2222-3333-4444-555555555555\"\nclient_secret = {{ env = \"SECRET\" }}\n\
         \n[[routes]]\nprefix = \"/customers/{{tenant}}/mde\"\napi = \"mde\"\ncredential = \"msp\"\n{}",
        SECTION.replace("credential = \"app\"", "credential = \"msp\"")
    ));
    assert!(
        partner.contains("identity_endpoint.credential") && partner.contains("partner"),
        "{partner}"
    );
    let unknown_key = error(&format!("{MINIMAL}{SECTION}header = \"x\"\n"));
    assert!(unknown_key.contains("header"), "{unknown_key}");
}
