//! The managed-identity endpoint (`GET /-/identity`, the App Service protocol): its refusals, its
//! 404 when off, and a token from the same cache the routes use, counted and logged without the
//! token or the header.

use defender_sim::{Sim, SimOptions};
use serde_json::Value;

use crate::support::{BinaryProxy, CLIENT_ID, TestProxy, client, standard_config};

/// The identity header the tests configure.
const HEADER: &str = "identity-header-0123456789";
/// The resource of the standard /mde route.
const MDE: &str = "https://api.securitycenter.microsoft.com";

fn section() -> String {
    format!("\n[identity_endpoint]\nsecret = \"{HEADER}\"\ncredential = \"app\"\n")
}

async fn with_endpoint() -> TestProxy {
    TestProxy::start_with(SimOptions::default(), |sim| {
        standard_config(sim, "") + &section()
    })
    .await
}

/// `GET /-/identity?api-version=2019-08-01&{query}` with `header` as the identity header.
async fn ask(proxy: &TestProxy, query: &str, header: Option<&str>) -> reqwest::Response {
    let mut request = client().get(format!(
        "{}/-/identity?api-version=2019-08-01&{query}",
        proxy.url
    ));
    if let Some(header) = header {
        request = request.header("X-IDENTITY-HEADER", header);
    }
    request.send().await.unwrap()
}

async fn problem(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("x-token-proxy-error")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.json().await.unwrap())
}

#[tokio::test]
async fn the_identity_endpoint_is_not_found_when_it_is_not_configured() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    let (status, kind, _) =
        problem(ask(&proxy, &format!("resource={MDE}"), Some(HEADER)).await).await;
    assert_eq!((status, kind.as_str()), (404, "identity_endpoint_off"));
}

#[tokio::test]
async fn a_request_without_the_identity_header_is_refused_with_401() {
    let proxy = with_endpoint().await;
    let (status, kind, body) = problem(ask(&proxy, &format!("resource={MDE}"), None).await).await;
    assert_eq!((status, kind.as_str()), (401, "identity_header_invalid"));
    assert!(
        !body.to_string().contains("securitycenter"),
        "nothing about the configuration is told without the header: {body}"
    );
}

#[tokio::test]
async fn a_wrong_identity_header_is_refused_with_401() {
    let proxy = with_endpoint().await;
    for wrong in [
        "identity-header-0123456788",
        "identity-header-012345678",
        "",
    ] {
        let (status, kind, _) =
            problem(ask(&proxy, &format!("resource={MDE}"), Some(wrong)).await).await;
        assert_eq!(
            (status, kind.as_str()),
            (401, "identity_header_invalid"),
            "{wrong:?}"
        );
    }
    assert_eq!(
        proxy
            .metric(
                "defender_token_proxy_identity_requests_total{outcome=\"identity_header_invalid\"}"
            )
            .await,
        Some(3.0)
    );
}

#[tokio::test]
async fn a_resource_no_route_of_the_credential_uses_is_refused_with_400() {
    let proxy = with_endpoint().await;
    for query in [
        "resource=https://vault.azure.net",
        "scope=https://management.azure.com/.default",
    ] {
        let (status, kind, body) = problem(ask(&proxy, query, Some(HEADER)).await).await;
        assert_eq!(
            (status, kind.as_str()),
            (400, "resource_not_served"),
            "{query}"
        );
        assert!(
            body["resources"].as_array().unwrap().contains(&MDE.into()),
            "{body}"
        );
    }
    let (status, kind, _) = problem(ask(&proxy, "", Some(HEADER)).await).await;
    assert_eq!((status, kind.as_str()), (400, "identity_request_invalid"));
    let old_version = client()
        .get(format!(
            "{}/-/identity?api-version=2017-09-01&resource={MDE}",
            proxy.url
        ))
        .header("X-IDENTITY-HEADER", HEADER)
        .send()
        .await
        .unwrap();
    let (status, kind, _) = problem(old_version).await;
    assert_eq!((status, kind.as_str()), (400, "identity_request_invalid"));
    let (status, kind, _) = problem(
        ask(
            &proxy,
            &format!("resource={MDE}&client_id=someone-else"),
            Some(HEADER),
        )
        .await,
    )
    .await;
    assert_eq!((status, kind.as_str()), (400, "identity_request_invalid"));
}

#[tokio::test]
async fn the_identity_header_stands_in_for_the_api_key_on_the_identity_endpoint_only() {
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        standard_config(sim, "api_keys = [\"inbound-key-0123456789\"]") + &section()
    })
    .await;
    let response = ask(&proxy, &format!("resource={MDE}"), Some(HEADER)).await;
    assert_eq!(response.status(), 200, "SDKs cannot send an API key");
    let (status, kind, _) = problem(ask(&proxy, &format!("resource={MDE}"), None).await).await;
    assert_eq!((status, kind.as_str()), (401, "identity_header_invalid"));
    let forwarded = client()
        .get(format!("{}/mde/api/alerts", proxy.url))
        .header("X-IDENTITY-HEADER", HEADER)
        .send()
        .await
        .unwrap();
    assert_eq!(
        forwarded.status(),
        401,
        "the header is no API key for the routes"
    );
}

#[tokio::test]
async fn another_method_than_get_on_the_identity_endpoint_is_a_problem_not_a_forward() {
    let proxy = with_endpoint().await;
    let response = client()
        .post(format!(
            "{}/-/identity?api-version=2019-08-01&resource={MDE}",
            proxy.url
        ))
        .header("X-IDENTITY-HEADER", HEADER)
        .send()
        .await
        .unwrap();
    let (status, kind, _) = problem(response).await;
    assert_eq!((status, kind.as_str()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn a_browser_is_refused_the_identity_endpoint_even_with_the_header() {
    let proxy = with_endpoint().await;
    let response = client()
        .get(format!(
            "{}/-/identity?api-version=2019-08-01&resource={MDE}",
            proxy.url
        ))
        .header("X-IDENTITY-HEADER", HEADER)
        .header("Origin", "https://evil.example")
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    let (status, kind, body) = problem(response).await;
    assert_eq!((status, kind.as_str()), (403, "cross_site_request"));
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn a_caller_with_the_header_gets_the_routes_token_from_the_same_cache() {
    let proxy = with_endpoint().await;
    // The route's token, as the upstream sees it.
    let echo: Value = proxy.get("/mde/_sim/echo").await.json().await.unwrap();
    let injected = crate::support::echoed(&echo, "authorization").remove(0);
    let entra_requests = proxy.control().token_requests();

    for query in [
        format!("resource={MDE}"),
        format!("scope={MDE}/.default"),
        format!("resource={MDE}&client_id={CLIENT_ID}"),
    ] {
        let response = ask(&proxy, &query, Some(HEADER)).await;
        assert_eq!(response.status(), 200, "{query}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            format!("Bearer {}", body["access_token"].as_str().unwrap()),
            injected
        );
        assert_eq!(body["resource"], MDE);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["client_id"], CLIENT_ID);
        let expires_on: u64 = body["expires_on"].as_str().unwrap().parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            expires_on > now + 60,
            "epoch seconds in the future: {expires_on}"
        );
    }
    assert_eq!(
        proxy.control().token_requests(),
        entra_requests,
        "the routes' cached token is handed out; Entra is not asked again"
    );
    assert_eq!(
        proxy
            .metric("defender_token_proxy_identity_requests_total{outcome=\"issued\"}")
            .await,
        Some(3.0)
    );
}

#[tokio::test]
async fn an_issuance_is_logged_with_resource_and_caller_but_never_the_token_or_header() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("dtp-identity-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.toml");
    std::fs::write(&config, standard_config(&sim, "") + &section()).unwrap();
    let proxy = BinaryProxy::start(&config).await;
    let body: Value = client()
        .get(format!(
            "{}/-/identity?api-version=2019-08-01&resource={MDE}",
            proxy.url
        ))
        .header("X-IDENTITY-HEADER", HEADER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let refused = client()
        .get(format!(
            "{}/-/identity?api-version=2019-08-01&resource={MDE}",
            proxy.url
        ))
        .header("X-IDENTITY-HEADER", "identity-header-wrong-value")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    proxy.signal("TERM");
    let (status, logs) = proxy.exit().await;
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(&dir).unwrap();

    let issued = logs
        .lines()
        .find(|l| l.contains("token issued to a managed identity caller"))
        .unwrap_or_else(|| panic!("no issuance line:\n{logs}"));
    assert!(
        issued.contains(MDE) && issued.contains("127.0.0.1:"),
        "{issued}"
    );
    assert!(logs.contains("managed identity request refused"), "{logs}");
    for secret in [token.as_str(), HEADER, "identity-header-wrong-value"] {
        assert!(!logs.contains(secret), "a log line holds {secret:?}");
    }
}
