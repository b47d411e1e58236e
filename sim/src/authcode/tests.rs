//! Tests of the authorization code flow with PKCE.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::super::test_support::{
    PUBLIC_CLIENT_ID, USERNAME, error_code, get_json, http, token_request, user_options,
};
use super::super::{Sim, SimOptions, SimUser};

const REDIRECT: &str = "http://localhost:8400/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const SCOPE: &str = "https://api.security.microsoft.com/.default offline_access";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// GETs the authorize endpoint; returns the status and the `Location` (or the page body).
async fn authorize(sim: &Sim, params: &[(&str, &str)]) -> (u16, String) {
    let mut url = url::Url::parse(&format!(
        "{}/{}/oauth2/v2.0/authorize",
        sim.authority(),
        SimOptions::default().tenant_id
    ))
    .expect("url");
    url.query_pairs_mut().extend_pairs(params);
    let response = http().get(url).send().await.expect("authorize");
    let status = response.status().as_u16();
    match response.headers().get("location") {
        Some(location) => (status, location.to_str().expect("location").to_owned()),
        None => (status, response.text().await.expect("page")),
    }
}

fn query_param(location: &str, name: &str) -> Option<String> {
    url::Url::parse(location)
        .ok()?
        .query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

async fn code_for(sim: &Sim, extra: &[(&str, &str)]) -> String {
    let challenge = challenge(VERIFIER);
    let mut params = vec![
        ("client_id", PUBLIC_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", SCOPE),
        ("state", "s-42"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let (status, location) = authorize(sim, &params).await;
    assert_eq!(status, 302, "{location}");
    assert!(
        location.starts_with("http://localhost:8400/callback?"),
        "{location}"
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("s-42"));
    query_param(&location, "code").expect("code")
}

async fn redeem(sim: &Sim, code: &str, verifier: &str) -> (u16, Value) {
    let fields = [
        ("grant_type", "authorization_code"),
        ("client_id", PUBLIC_CLIENT_ID),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("scope", SCOPE),
    ];
    token_request(sim, &fields).await
}

#[tokio::test]
async fn authorization_code_with_pkce_is_redeemed_once_for_user_and_refresh_tokens() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let code = code_for(&sim, &[]).await;
    let (status, body) = redeem(&sim, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
    let token = body["access_token"].as_str().expect("access_token");
    let (_, me) = get_json(&format!("{}/_sim/whoami", sim.xdr()), token).await;
    assert_eq!(
        (me["idtyp"].as_str(), me["upn"].as_str()),
        (Some("user"), Some(USERNAME))
    );
    let (status, body) = redeem(&sim, &code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str(), error_code(&body)),
        (400, Some("invalid_grant"), 54005)
    );
    assert_eq!(sim.control().grant_requests("authorization_code"), 2);
}

#[tokio::test]
async fn a_verifier_that_does_not_hash_to_the_challenge_is_refused_with_aadsts501481() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let code = code_for(&sim, &[]).await;
    let (status, body) = redeem(&sim, &code, "another-verifier-of-enough-length-0123456789").await;
    assert_eq!(
        (status, body["error"].as_str(), error_code(&body)),
        (400, Some("invalid_grant"), 501481)
    );
    let fields = [
        ("grant_type", "authorization_code"),
        ("client_id", PUBLIC_CLIENT_ID),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:8400/other"),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = token_request(&sim, &fields).await;
    assert_eq!((status, error_code(&body)), (400, 70000));
}

#[tokio::test]
async fn login_hint_picks_the_user_who_signs_in() {
    let mut options = user_options();
    options.users.push(SimUser {
        username: "hunter@contoso.onmicrosoft.com".to_owned(),
        password: "pw".to_owned(),
        scopes: vec!["AdvancedQuery.Read".to_owned()],
    });
    let sim = Sim::start(options).await.expect("sim");
    let code = code_for(&sim, &[("login_hint", "Hunter@contoso.onmicrosoft.com")]).await;
    let (_, body) = redeem(&sim, &code, VERIFIER).await;
    let token = body["access_token"].as_str().expect("access_token");
    let (_, me) = get_json(&format!("{}/_sim/whoami", sim.xdr()), token).await;
    assert_eq!(
        (me["upn"].as_str(), me["scp"].as_str()),
        (
            Some("hunter@contoso.onmicrosoft.com"),
            Some("AdvancedQuery.Read")
        )
    );
}

#[tokio::test]
async fn authorize_refuses_bad_redirects_with_a_page_and_other_errors_with_a_redirect() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let challenge = challenge(VERIFIER);
    let base = |redirect: &'static str| {
        vec![
            ("client_id", PUBLIC_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("scope", SCOPE),
        ]
    };
    for redirect in [
        "https://localhost/cb",
        "http://evil.example/cb",
        "not a url",
    ] {
        let (status, page) = authorize(&sim, &base(redirect)).await;
        assert_eq!(status, 400, "{redirect}");
        assert!(page.contains("AADSTS50011"), "{page}");
    }
    let (status, location) = authorize(&sim, &base("http://127.0.0.1/cb")).await;
    assert_eq!(status, 302);
    assert!(
        location.starts_with("http://127.0.0.1/cb?error=invalid_request"),
        "{location}"
    );
    let mut plain = base("http://127.0.0.1/cb");
    plain.extend([
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "plain"),
    ]);
    let (_, location) = authorize(&sim, &plain).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    let mut bad_scope = base("http://localhost/cb");
    bad_scope[3] = ("scope", "https://management.azure.com/.default");
    bad_scope.push(("code_challenge", challenge.as_str()));
    bad_scope.push(("code_challenge_method", "S256"));
    let (_, location) = authorize(&sim, &bad_scope).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_resource")
    );
    assert!(
        query_param(&location, "error_description")
            .is_some_and(|d| d.starts_with("AADSTS500011: "))
    );
}
