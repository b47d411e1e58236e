//! Tests of refresh-token rotation, reuse detection and revocation.

use serde_json::Value;

use super::super::test_support::{
    CLIENT_ID, PUBLIC_CLIENT_ID, SECRET, error_code, get_json, password_grant, token_request,
    token_request_for, user_options,
};
use super::super::{Sim, SimOptions, SimTenant};

const OFFLINE_MDE: &str = "https://api.securitycenter.microsoft.com/.default offline_access";

async fn refresh(sim: &Sim, token: &str, scope: Option<&str>) -> (u16, Value) {
    let mut fields = vec![
        ("grant_type", "refresh_token"),
        ("client_id", PUBLIC_CLIENT_ID),
        ("refresh_token", token),
    ];
    fields.extend(scope.map(|scope| ("scope", scope)));
    token_request(sim, &fields).await
}

async fn first_refresh_token(sim: &Sim) -> String {
    let (status, body) = password_grant(sim, OFFLINE_MDE).await;
    assert_eq!(status, 200, "{body}");
    body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned()
}

#[tokio::test]
async fn refresh_tokens_rotate_and_work_for_any_resource() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let first = first_refresh_token(&sim).await;
    let (status, body) = refresh(&sim, &first, Some("https://graph.microsoft.com/.default")).await;
    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().expect("rotated").to_owned();
    assert_ne!(second, first);
    let token = body["access_token"].as_str().expect("access_token");
    let (_, me) = get_json(&format!("{}/_sim/whoami", sim.graph()), token).await;
    assert_eq!(me["idtyp"], "user");
    // Without a scope, the sign-in's scope is used.
    let (status, body) = refresh(&sim, &second, None).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("access_token");
    assert_eq!(
        get_json(&format!("{}/_sim/whoami", sim.mde()), token)
            .await
            .0,
        200
    );
    assert_eq!(sim.control().refresh_token_reuses(), 0);
    assert_eq!(sim.control().grant_requests("refresh_token"), 2);
}

#[tokio::test]
async fn presenting_a_rotated_out_refresh_token_revokes_the_whole_family() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let first = first_refresh_token(&sim).await;
    let (_, body) = refresh(&sim, &first, None).await;
    let second = body["refresh_token"].as_str().expect("rotated").to_owned();
    let (status, body) = refresh(&sim, &first, None).await;
    assert_eq!(
        (status, body["error"].as_str(), error_code(&body)),
        (400, Some("invalid_grant"), 70000)
    );
    assert_eq!(sim.control().refresh_token_reuses(), 1);
    let (status, _) = refresh(&sim, &second, None).await;
    assert_eq!(
        status, 400,
        "the newest token of a reused family is dead too"
    );
    assert_eq!(sim.control().refresh_token_reuses(), 1);
    // Another sign-in starts a new, healthy family.
    let other = first_refresh_token(&sim).await;
    assert_eq!(refresh(&sim, &other, None).await.0, 200);
}

#[tokio::test]
async fn revoked_refresh_tokens_answer_aadsts50173_and_later_sign_ins_work() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let first = first_refresh_token(&sim).await;
    sim.control().revoke_refresh_tokens();
    let (status, body) = refresh(&sim, &first, None).await;
    assert_eq!(
        (status, body["error"].as_str(), error_code(&body)),
        (400, Some("invalid_grant"), 50173)
    );
    let later = first_refresh_token(&sim).await;
    assert_eq!(refresh(&sim, &later, None).await.0, 200);
    assert_eq!(sim.control().refresh_token_reuses(), 0);
}

#[tokio::test]
async fn refresh_tokens_are_bound_to_their_client_but_not_to_a_tenant() {
    let mut options = user_options();
    options.customer_tenants.push(SimTenant {
        id: "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f".to_owned(),
        domain: "fabrikam.onmicrosoft.com".to_owned(),
    });
    let sim = Sim::start(options).await.expect("sim");
    let first = first_refresh_token(&sim).await;
    let confidential = [
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
        ("refresh_token", first.as_str()),
    ];
    let (status, body) = token_request(&sim, &confidential).await;
    assert_eq!((status, error_code(&body)), (400, 70000));
    let fields = [
        ("grant_type", "refresh_token"),
        ("client_id", PUBLIC_CLIENT_ID),
        ("refresh_token", first.as_str()),
    ];
    let (status, body) = token_request_for(&sim, "fabrikam.onmicrosoft.com", &fields).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("access_token");
    let (_, me) = get_json(&format!("{}/_sim/whoami", sim.mde()), token).await;
    assert_eq!(me["tid"], "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f");
    assert_ne!(me["tid"], SimOptions::default().tenant_id.as_str());
    let (status, body) = refresh(&sim, "not-a-refresh-token", None).await;
    assert_eq!((status, error_code(&body)), (400, 70000));
}
