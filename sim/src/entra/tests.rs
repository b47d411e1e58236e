//! Tests of the simulated token endpoint, driven over HTTP like a real client.

use std::time::Duration;

use super::super::assertion::tests::{assertion, fixture};
use super::super::test_support::{
    CLIENT_ID, MDE_SCOPE, SECRET, error_code, http, token_request, token_request_for,
};
use super::super::{EntraFault, Sim, SimClient, SimOptions};

fn secret_fields<'a>(secret: &'a str, scope: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
        ("client_secret", secret),
        ("scope", scope),
    ]
}

#[tokio::test]
async fn token_request_with_the_client_secret_returns_an_entra_shaped_bearer_token() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let (status, body) = token_request(&sim, &secret_fields(SECRET, MDE_SCOPE)).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    assert!(body.get("refresh_in").is_none());
    assert_eq!(
        body["access_token"].as_str().map(|t| t.split('.').count()),
        Some(3)
    );
    assert_eq!(sim.control().token_requests(), 1);
}

#[tokio::test]
async fn token_request_with_http_basic_credentials_and_the_tenant_domain_is_accepted() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let url = format!(
        "{}/Contoso.OnMicrosoft.com/oauth2/v2.0/token",
        sim.authority()
    );
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let response = http()
        .post(url)
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&form)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn token_request_with_wrong_secret_is_rejected_with_aadsts7000215() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let (status, body) = token_request(&sim, &secret_fields("not-the-secret", MDE_SCOPE)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(error_code(&body), 7000215);
    let description = body["error_description"]
        .as_str()
        .expect("error_description");
    assert!(description.starts_with("AADSTS7000215: Invalid client secret provided."));
    assert!(description.contains("\r\nTrace ID: ") && description.contains("\r\nCorrelation ID: "));
    assert_eq!(
        body["error_uri"],
        format!("{}/error?code=7000215", sim.authority())
    );
    assert!(
        !description.contains("not-the-secret"),
        "the secret must not be echoed"
    );
}

#[tokio::test]
async fn token_request_for_an_unknown_tenant_is_rejected_with_aadsts90002() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let (status, body) = token_request_for(
        &sim,
        "fabrikam.onmicrosoft.com",
        &secret_fields(SECRET, MDE_SCOPE),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(error_code(&body), 90002);
}

#[tokio::test]
async fn token_request_with_a_bad_scope_is_rejected_with_the_matching_aadsts_code() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let cases = [
        (
            "https://api.securitycenter.microsoft.com",
            70011,
            "invalid_scope",
        ),
        (
            "https://graph.microsoft.com/.default https://api.security.microsoft.com/.default",
            700022,
            "invalid_scope",
        ),
        (
            "https://management.azure.com/.default",
            500011,
            "invalid_resource",
        ),
    ];
    for (scope, code, error) in cases {
        let (status, body) = token_request(&sim, &secret_fields(SECRET, scope)).await;
        assert_eq!(
            (status, error_code(&body), body["error"].as_str()),
            (400, code, Some(error)),
            "scope {scope}"
        );
    }
}

#[tokio::test]
async fn token_request_with_an_unknown_client_or_no_credential_is_rejected() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let unknown = [
        ("grant_type", "client_credentials"),
        ("client_id", "00000000-0000-0000-0000-000000000000"),
        ("client_secret", SECRET),
        ("scope", MDE_SCOPE),
    ];
    let (status, body) = token_request(&sim, &unknown).await;
    assert_eq!((status, error_code(&body)), (400, 700016));
    let bare = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
        ("scope", MDE_SCOPE),
    ];
    let (status, body) = token_request(&sim, &bare).await;
    assert_eq!((status, error_code(&body)), (400, 7000218));
    let on_behalf_of = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("client_id", CLIENT_ID),
        ("scope", MDE_SCOPE),
    ];
    assert_eq!(
        error_code(&token_request(&sim, &on_behalf_of).await.1),
        70003
    );
}

#[tokio::test]
async fn certificate_assertion_is_accepted_once_and_its_replay_is_refused() {
    let pem = fixture();
    let client_id = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    let options = SimOptions {
        clients: vec![SimClient::certificate(client_id, &pem)],
        ..SimOptions::default()
    };
    let tenant = options.tenant_id.clone();
    let sim = Sim::start(options).await.expect("sim");
    let aud = format!("{}/{tenant}/oauth2/v2.0/token", sim.authority());
    let signed = assertion(
        &pem,
        client_id,
        &aud,
        &uuid::Uuid::new_v4().to_string(),
        600,
    );
    let fields = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", signed.as_str()),
        ("scope", "https://api.security.microsoft.com/.default"),
    ];
    let (status, body) = token_request(&sim, &fields).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = token_request(&sim, &fields).await;
    assert_eq!(
        (status, body["error"].as_str(), error_code(&body)),
        (401, Some("invalid_client"), 50013)
    );
}

#[tokio::test]
async fn numbers_as_strings_sends_expires_in_as_strings_like_v1_endpoints() {
    let options = SimOptions {
        numbers_as_strings: true,
        refresh_in: Some(Duration::from_secs(1800)),
        ..SimOptions::default()
    };
    let sim = Sim::start(options).await.expect("sim");
    let (status, body) = token_request(&sim, &secret_fields(SECRET, MDE_SCOPE)).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], "3599");
    assert_eq!(body["ext_expires_in"], "3599");
    assert_eq!(body["refresh_in"], "1800");
}

#[tokio::test]
async fn injected_faults_change_the_answer_and_still_count_as_token_requests() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let control = sim.control();
    control.set_fault(Some(EntraFault::Throttled {
        retry_after: Duration::from_millis(2_500),
    }));
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        sim.authority(),
        SimOptions::default().tenant_id
    );
    let response = http()
        .post(&url)
        .form(&secret_fields(SECRET, MDE_SCOPE))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    control.set_fault(Some(EntraFault::RejectAll { code: 7000222 }));
    let (status, body) = token_request(&sim, &secret_fields(SECRET, MDE_SCOPE)).await;
    assert_eq!((status, error_code(&body)), (401, 7000222));
    control.set_fault(Some(EntraFault::MalformedJson));
    let response = http()
        .post(&url)
        .form(&secret_fields(SECRET, MDE_SCOPE))
        .send()
        .await
        .expect("send");
    assert!(response.json::<serde_json::Value>().await.is_err());
    control.set_fault(None);
    assert_eq!(
        token_request(&sim, &secret_fields(SECRET, MDE_SCOPE))
            .await
            .0,
        200
    );
    assert!(
        control
            .wait_for_token_requests(4, Duration::from_secs(5))
            .await
    );
}
