//! Tests of the managed-identity server: both protocol variants, their header checks and identity selection.

use std::time::Duration;

use serde_json::Value;

use super::super::test_support::{get_json, http};
use super::super::{EntraFault, Sim, SimOptions};

const USER_ASSIGNED: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const MDE: &str = "https://api.securitycenter.microsoft.com";

fn options() -> SimOptions {
    SimOptions {
        managed_identities: vec![USER_ASSIGNED.to_owned()],
        ..SimOptions::default()
    }
}

async fn get(url: String, header: Option<(&str, &str)>) -> (u16, Value) {
    let mut request = http().get(url);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("identity request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

fn imds_url(sim: &Sim, query: &str) -> String {
    format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&{query}",
        sim.identity()
    )
}

fn app_service_url(sim: &Sim, query: &str) -> String {
    format!(
        "{}/msi/token?api-version=2019-08-01&{query}",
        sim.identity()
    )
}

const METADATA: Option<(&str, &str)> = Some(("Metadata", "true"));
const IDENTITY_HEADER: Option<(&str, &str)> = Some(("X-IDENTITY-HEADER", "sim-identity-header"));

#[tokio::test]
async fn imds_answers_the_system_identity_with_every_number_as_a_string() {
    let sim = Sim::start(options()).await.expect("sim");
    let (status, body) = get(imds_url(&sim, &format!("resource={MDE}")), METADATA).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["expires_in"].as_str(), body["refresh_token"].as_str()),
        (Some("3599"), Some(""))
    );
    let expires_on: u64 = body["expires_on"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("expires_on");
    let not_before: u64 = body["not_before"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("not_before");
    assert!(expires_on >= not_before + 3598, "{body}");
    assert_eq!(
        (body["resource"].as_str(), body["token_type"].as_str()),
        (Some(MDE), Some("Bearer"))
    );
    let token = body["access_token"].as_str().expect("access_token");
    let (status, me) = get_json(&format!("{}/_sim/whoami", sim.mde()), token).await;
    assert_eq!(status, 200);
    assert_eq!(me["appid"], SimOptions::SYSTEM_IDENTITY_CLIENT_ID);
    assert_eq!(
        (me["idtyp"].as_str(), me["tid"].as_str()),
        (Some("app"), Some(SimOptions::default().tenant_id.as_str()))
    );
    assert_eq!(me["roles"], serde_json::json!(SimOptions::default().roles));
}

#[tokio::test]
async fn imds_requires_the_metadata_header() {
    let sim = Sim::start(options()).await.expect("sim");
    let (status, body) = get(imds_url(&sim, &format!("resource={MDE}")), None).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        serde_json::json!({"error": "invalid_request", "error_description": "Required metadata header not specified"})
    );
    let (status, _) = get(
        imds_url(&sim, &format!("resource={MDE}")),
        Some(("Metadata", "false")),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(sim.control().identity_requests(), 2);
}

#[tokio::test]
async fn app_service_answers_a_user_assigned_identity_without_expires_in() {
    let sim = Sim::start(options()).await.expect("sim");
    let query = format!("resource=https://graph.microsoft.com&client_id={USER_ASSIGNED}");
    let (status, body) = get(app_service_url(&sim, &query), IDENTITY_HEADER).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("expires_in").is_none());
    assert!(
        body["expires_on"]
            .as_str()
            .is_some_and(|s| s.parse::<u64>().is_ok())
    );
    assert_eq!(body["client_id"], USER_ASSIGNED);
    assert_eq!(body["resource"], "https://graph.microsoft.com");
    let token = body["access_token"].as_str().expect("access_token");
    let (_, me) = get_json(&format!("{}/_sim/whoami", sim.graph()), token).await;
    assert_eq!(me["appid"], USER_ASSIGNED);
}

#[tokio::test]
async fn app_service_requires_the_identity_header_value() {
    let sim = Sim::start(options()).await.expect("sim");
    let url = app_service_url(&sim, &format!("resource={MDE}"));
    assert_eq!(get(url.clone(), None).await.0, 400);
    assert_eq!(
        get(url.clone(), Some(("X-IDENTITY-HEADER", "stale")))
            .await
            .0,
        401
    );
    assert_eq!(
        get(url, METADATA).await.0,
        400,
        "IMDS' header is not App Service's"
    );
    assert_eq!(sim.control().identity_requests(), 3);
}

#[tokio::test]
async fn unknown_identities_and_resources_are_refused_with_invalid_request() {
    let sim = Sim::start(options()).await.expect("sim");
    let query = format!("resource={MDE}&client_id=00000000-0000-0000-0000-000000000000");
    let (status, body) = get(imds_url(&sim, &query), METADATA).await;
    assert_eq!(
        (status, body),
        (
            400,
            serde_json::json!({"error": "invalid_request", "error_description": "Identity not found"})
        )
    );
    let (status, body) = get(
        app_service_url(&sim, "resource=https://management.azure.com"),
        IDENTITY_HEADER,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn faults_apply_to_the_identity_server_in_its_own_error_shape() {
    let sim = Sim::start(options()).await.expect("sim");
    sim.control().set_fault(Some(EntraFault::Throttled {
        retry_after: Duration::from_secs(2),
    }));
    let response = http()
        .get(imds_url(&sim, &format!("resource={MDE}")))
        .header("Metadata", "true")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.starts_with("AADSTS90055: "))
    );
    sim.control().set_fault(None);
    assert_eq!(
        get(imds_url(&sim, &format!("resource={MDE}")), METADATA)
            .await
            .0,
        200
    );
}
