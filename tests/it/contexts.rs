//! The ways in besides the application context, side by side in one proxy: partner customer
//! tenants, the legacy Cloud Apps API token, workload identity, managed identity and the password
//! grant, each against the simulator.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use defender_sim::{Sim, SimClient, SimOptions, SimTenant};
use defender_token_proxy::config::{ConfigSource, Env, Overrides};
use serde_json::Value;

use crate::support::{CLIENT_ID, SECRET, TestProxy, client, eventually};

const HOME: &str = "6f1d0a52-8e2b-4c7a-9d3e-2a5b7c9e1f04";
const FABRIKAM: &str = "0c6e2d47-35a1-4f0e-9b8c-7d2a51e6f3b9";
const UNLISTED: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

fn partner_options() -> SimOptions {
    SimOptions {
        customer_tenants: vec![SimTenant {
            id: FABRIKAM.into(),
            domain: "fabrikam.onmicrosoft.com".into(),
        }],
        ..SimOptions::default()
    }
}

/// A partner credential for the home tenant and Fabrikam, with a `{tenant}` route and a
/// header-named route to MDE.
fn partner_config(sim: &Sim) -> String {
    format!(
        r#"
[cloud]
authority_host = "{authority}"

[credentials.partner]
type = "client_secret"
tenants = ["{HOME}", "fabrikam.onmicrosoft.com"]
client_id = "{CLIENT_ID}"
client_secret = {{ env = "SECRET" }}

[[routes]]
prefix = "/customers/{{tenant}}/mde"
api = "mde"
credential = "partner"
upstream = "{mde}"

[[routes]]
prefix = "/partner"
api = "mde"
credential = "partner"
upstream = "{mde}"
tenant_header = true
"#,
        authority = sim.authority(),
        mde = sim.mde(),
    )
}

async fn json(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_partner_route_gets_each_customer_its_own_token_and_refuses_unlisted_tenants() {
    let proxy = TestProxy::start_with(partner_options(), partner_config).await;
    let home = proxy
        .get(&format!("/customers/{HOME}/mde/_sim/whoami"))
        .await;
    assert_eq!(home.status(), 200);
    assert_eq!(json(home).await["tid"], HOME);
    let fabrikam = proxy
        .get("/customers/FABRIKAM.onmicrosoft.com/mde/_sim/whoami")
        .await;
    assert_eq!(fabrikam.status(), 200);
    assert_eq!(json(fabrikam).await["tid"], FABRIKAM);

    let control = proxy.control();
    let unlisted = proxy
        .get(&format!("/customers/{UNLISTED}/mde/_sim/whoami"))
        .await;
    assert_eq!(unlisted.status(), 403);
    assert_eq!(
        unlisted.headers()["x-token-proxy-error"],
        "tenant_not_allowed"
    );
    assert_eq!(control.token_requests_in(UNLISTED), 0);
    let odd = proxy.get("/customers/not-a-customer/mde/_sim/whoami").await;
    assert_eq!(odd.status(), 403);
    assert!(
        json(odd).await["title"]
            .as_str()
            .unwrap()
            .contains("not-a-customer")
    );
}

#[tokio::test]
async fn one_customer_without_consent_affects_neither_the_others_nor_readiness() {
    let sim = Sim::start(partner_options()).await.unwrap();
    sim.control().refuse_tenant(FABRIKAM, Some(65001));
    let proxy = TestProxy::start_on(sim, partner_config).await;
    let refused = proxy
        .get("/customers/fabrikam.onmicrosoft.com/mde/api/alerts")
        .await;
    assert_eq!(refused.status(), 502);
    let problem = json(refused).await;
    assert_eq!(problem["aadsts"][0], 65001);
    assert!(
        problem["hint"].as_str().unwrap().contains("consent"),
        "{problem}"
    );
    let home = proxy
        .get(&format!("/customers/{HOME}/mde/api/alerts"))
        .await;
    assert_eq!(home.status(), 200);
    let ready = proxy.admin("/-/ready").await;
    assert_eq!(ready.status(), 200);
    let ready = json(ready).await;
    let fabrikam = ready["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "fabrikam.onmicrosoft.com")
        .unwrap()
        .clone();
    assert_eq!(fabrikam["state"], "failing", "{ready}");
    assert_eq!(fabrikam["customer"], true);
}

#[tokio::test]
async fn the_tenant_header_names_the_customer_and_is_never_forwarded() {
    let proxy = TestProxy::start_with(partner_options(), partner_config).await;
    let http = client();
    let whoami = http
        .get(format!("{}/partner/_sim/whoami", proxy.url))
        .header("X-Tenant-Id", "fabrikam.onmicrosoft.com")
        .send()
        .await
        .unwrap();
    assert_eq!(json(whoami).await["tid"], FABRIKAM);
    let echo = http
        .get(format!("{}/partner/_sim/echo", proxy.url))
        .header("X-Tenant-Id", HOME)
        .send()
        .await
        .unwrap();
    assert_eq!(echo.status(), 200);
    let echo = json(echo).await;
    assert!(
        crate::support::echoed(&echo, "x-tenant-id").is_empty(),
        "{echo}"
    );
    let missing = proxy.get("/partner/_sim/echo").await;
    assert_eq!(missing.status(), 400);
    assert_eq!(missing.headers()["x-token-proxy-error"], "tenant_required");
    // On a {tenant} route the header may only agree with the path.
    let conflict = http
        .get(format!("{}/customers/{HOME}/mde/_sim/echo", proxy.url))
        .header("X-Tenant-Id", FABRIKAM)
        .send()
        .await
        .unwrap();
    assert_eq!(
        conflict.status(),
        200,
        "the {{tenant}} route ignores the header"
    );
}

#[tokio::test]
async fn a_customers_next_page_link_stays_in_that_customer() {
    let proxy = TestProxy::start_with(partner_options(), partner_config).await;
    let page = proxy
        .get("/customers/fabrikam.onmicrosoft.com/mde/api/alerts?$top=2")
        .await;
    assert_eq!(page.status(), 200);
    let next = json(page).await["@odata.nextLink"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = format!("{}/customers/fabrikam.onmicrosoft.com/mde/", proxy.url);
    assert!(next.starts_with(&expected), "{next}");
    let second = client().get(&next).send().await.unwrap();
    assert_eq!(second.status(), 200);
}

#[tokio::test]
async fn a_legacy_api_token_is_sent_with_the_token_scheme_and_entra_is_never_asked() {
    let options = SimOptions {
        // The proxy under test reads its secret, here the API token, from SECRET.
        mdca_api_tokens: vec![SECRET.into()],
        ..SimOptions::default()
    };
    let proxy = TestProxy::start_with(options, |sim| {
        format!(
            r#"
[cloud]
authority_host = "{authority}"

[credentials.legacy]
type = "api_token"
token = {{ env = "SECRET" }}

[[routes]]
prefix = "/mdca"
api = "mdca"
credential = "legacy"
upstream = "{mdca}"
"#,
            authority = sim.authority(),
            mdca = sim.mdca(),
        )
    })
    .await;
    let whoami = proxy.get("/mdca/_sim/whoami").await;
    assert_eq!(whoami.status(), 200, "{:?}", whoami.text().await);
    assert_eq!(proxy.control().token_requests(), 0);
    assert_eq!(proxy.admin("/-/ready").await.status(), 200);
}

/// An unsigned JWT such as a projected service account token, with `jti`.
fn federated_token(jti: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k"}"#);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = serde_json::json!({
        "iss": "https://oidc.prod-aks.azure.com/cluster/",
        "sub": "system:serviceaccount:security:defender-tools",
        "aud": ["api://AzureADTokenExchange"],
        "exp": exp,
        "jti": jti,
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.c2ln")
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dtp-it-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn env_of(vars: Vec<(&'static str, String)>) -> Env {
    let map: HashMap<&str, String> = vars.into_iter().collect();
    Arc::new(move |name: &str| map.get(name).cloned())
}

#[tokio::test]
async fn a_workload_identity_presents_the_projected_token_read_again_for_each_token_request() {
    let workload = "7b3f1c2e-9d4a-4e5b-8c6f-0a1b2c3d4e5f";
    let options = SimOptions {
        clients: vec![SimClient::federated(
            workload,
            "https://oidc.prod-aks.azure.com/cluster/",
            "system:serviceaccount:security:defender-tools",
        )],
        ..SimOptions::default()
    };
    let sim = Sim::start(options).await.unwrap();
    let dir = scratch_dir();
    let token_file = dir.join("azure-identity-token");
    std::fs::write(&token_file, federated_token("first")).unwrap();
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[credentials.workload]\ntype = \"workload_identity\"\n\n[[routes]]\nprefix = \"/mde\"\napi = \"mde\"\ncredential = \"workload\"\nupstream = \"{}\"\n",
            sim.mde()
        ),
    )
    .unwrap();
    // As the Azure Workload Identity webhook sets them: the authority with a trailing slash.
    let env = env_of(vec![
        ("AZURE_CLIENT_ID", workload.into()),
        ("AZURE_TENANT_ID", HOME.into()),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("AZURE_AUTHORITY_HOST", format!("{}/", sim.authority())),
    ]);
    let proxy =
        TestProxy::start_from(sim, ConfigSource::file(&config, Overrides::default(), env)).await;
    let whoami = proxy.get("/mde/_sim/whoami").await;
    assert_eq!(whoami.status(), 200);
    assert_eq!(json(whoami).await["appid"], workload);
    let control = proxy.control();
    assert_eq!(control.federated_assertions(), ["first"]);

    // The kubelet rotates the file; the next token request must present the new one.
    std::fs::write(&token_file, federated_token("second")).unwrap();
    control.revoke_all_tokens();
    let again = proxy.get("/mde/_sim/whoami").await;
    assert_eq!(again.status(), 200);
    assert_eq!(control.federated_assertions(), ["first", "second"]);
}

/// The proxy with one managed identity credential (`settings` in its section) for /mde, its
/// config file read with `env`.
async fn managed_identity_proxy(sim: Sim, settings: &str, env: Env) -> TestProxy {
    let config = scratch_dir().join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[credentials.mi]\ntype = \"managed_identity\"\n{settings}\n\n[[routes]]\nprefix = \"/mde\"\napi = \"mde\"\ncredential = \"mi\"\nupstream = \"{}\"\n",
            sim.mde()
        ),
    )
    .unwrap();
    TestProxy::start_from(sim, ConfigSource::file(&config, Overrides::default(), env)).await
}

#[tokio::test]
async fn a_managed_identity_gets_tokens_from_imds() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let endpoint = format!(
        "endpoint = \"{}/metadata/identity/oauth2/token\"",
        sim.identity()
    );
    let proxy = managed_identity_proxy(sim, &endpoint, env_of(vec![])).await;
    let whoami = proxy.get("/mde/_sim/whoami").await;
    assert_eq!(whoami.status(), 200, "{:?}", whoami.text().await);
    assert!(proxy.control().identity_requests() >= 1);
    assert_eq!(proxy.control().token_requests(), 0);
}

#[tokio::test]
async fn an_app_service_managed_identity_uses_its_endpoint_header_and_client_id() {
    let user_assigned = "3c2b1a09-8f7e-4d6c-9b5a-493827160504";
    let sim = Sim::start(SimOptions {
        managed_identities: vec![user_assigned.into()],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let env = env_of(vec![
        ("IDENTITY_ENDPOINT", format!("{}/msi/token", sim.identity())),
        ("IDENTITY_HEADER", "sim-identity-header".into()),
    ]);
    let settings = format!("client_id = \"{user_assigned}\"");
    let proxy = managed_identity_proxy(sim, &settings, env).await;
    let whoami = proxy.get("/mde/_sim/whoami").await;
    assert_eq!(whoami.status(), 200, "{:?}", whoami.text().await);
    assert_eq!(json(whoami).await["appid"], user_assigned);
}

#[tokio::test]
async fn the_password_grant_gets_user_tokens() {
    let public = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
    let options = SimOptions {
        clients: vec![SimClient::public(public)],
        ..SimOptions::default()
    };
    let proxy = TestProxy::start_with(options, |sim| {
        format!(
            r#"
[cloud]
authority_host = "{authority}"

[credentials.ropc]
type = "password"
tenant = "contoso.onmicrosoft.com"
client_id = "{public}"
username = "analyst@contoso.onmicrosoft.com"
password = "correct horse"

[[routes]]
prefix = "/mde"
api = "mde"
credential = "ropc"
upstream = "{mde}"
"#,
            authority = sim.authority(),
            mde = sim.mde(),
        )
    })
    .await;
    let whoami = json(proxy.get("/mde/_sim/whoami").await).await;
    assert_eq!(whoami["idtyp"], "user", "{whoami}");
    assert_eq!(whoami["upn"], "analyst@contoso.onmicrosoft.com");
    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy.control().grant_requests("password") == 1
        })
        .await
    );
}
