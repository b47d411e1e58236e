//! Tests of the device code flow, with `SimControl` playing the user.

use std::time::Duration;

use serde_json::Value;

use super::super::test_support::{
    CLIENT_ID, MDE_SCOPE, PUBLIC_CLIENT_ID, USERNAME, error_code, get_json, http, token_request,
    user_options,
};
use super::super::{Sim, SimOptions};
use super::DEVICE_CODE_GRANT;

async fn start(sim: &Sim, client_id: &str, scope: &str) -> (u16, Value) {
    let url = format!(
        "{}/{}/oauth2/v2.0/devicecode",
        sim.authority(),
        SimOptions::default().tenant_domain
    );
    let response = http()
        .post(url)
        .form(&[("client_id", client_id), ("scope", scope)])
        .send()
        .await
        .expect("devicecode request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

async fn poll(sim: &Sim, device_code: &str) -> (u16, Value) {
    let fields = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("client_id", PUBLIC_CLIENT_ID),
        ("device_code", device_code),
    ];
    token_request(sim, &fields).await
}

fn error(body: &(u16, Value)) -> (u16, &str) {
    (body.0, body.1["error"].as_str().unwrap_or_default())
}

#[tokio::test]
async fn devicecode_answers_like_entra_with_the_configured_interval_and_lifetime() {
    let options = SimOptions {
        device_code_interval: Duration::from_millis(1_900),
        ..user_options()
    };
    let sim = Sim::start(options).await.expect("sim");
    let (status, body) = start(
        &sim,
        PUBLIC_CLIENT_ID,
        "offline_access https://graph.microsoft.com/.default",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let user_code = body["user_code"].as_str().expect("user_code");
    assert!(
        user_code.len() == 9 && user_code.as_bytes()[4] == b'-',
        "{user_code}"
    );
    assert_eq!(
        body["verification_uri"],
        format!("{}/devicelogin", sim.authority()).as_str()
    );
    assert_eq!(
        (body["interval"].as_u64(), body["expires_in"].as_u64()),
        (Some(1), Some(900))
    );
    assert!(body.get("verification_uri_complete").is_none());
    assert_eq!(
        body["message"],
        format!(
            "To sign in, use a web browser to open the page {}/devicelogin and enter the code {user_code} to authenticate.",
            sim.authority()
        )
        .as_str()
    );
    let (status, body) = start(&sim, "00000000-0000-0000-0000-000000000000", MDE_SCOPE).await;
    assert_eq!((status, error_code(&body)), (400, 700016));
    let (status, body) = start(&sim, PUBLIC_CLIENT_ID, "openid").await;
    assert_eq!((status, error_code(&body)), (400, 70011));
}

#[tokio::test]
async fn an_approved_device_code_is_redeemed_once_for_a_user_token_and_refresh_token() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let control = sim.control();
    let waiter = tokio::spawn({
        let control = control.clone();
        async move { control.wait_for_device_code(Duration::from_secs(10)).await }
    });
    let (_, body) = start(
        &sim,
        PUBLIC_CLIENT_ID,
        &format!("{MDE_SCOPE} offline_access"),
    )
    .await;
    let device_code = body["device_code"].as_str().expect("device_code");
    let user_code = waiter.await.expect("waiter").expect("a pending code");
    assert_eq!(user_code, body["user_code"].as_str().expect("user_code"));
    let pending = poll(&sim, device_code).await;
    assert_eq!(error(&pending), (400, "authorization_pending"));
    assert_eq!(error_code(&pending.1), 70016);
    assert!(!control.approve_device_code(&user_code, "nobody@contoso.onmicrosoft.com"));
    assert!(!control.approve_device_code("BBBB-CCCC", USERNAME));
    assert!(control.approve_device_code(&user_code.to_lowercase(), USERNAME));
    assert_eq!(
        control
            .wait_for_device_code(Duration::from_millis(20))
            .await,
        None
    );
    let (status, body) = poll(&sim, device_code).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
    let token = body["access_token"].as_str().expect("access_token");
    let (_, me) = get_json(&format!("{}/_sim/whoami", sim.mde()), token).await;
    assert_eq!(
        (me["idtyp"].as_str(), me["upn"].as_str()),
        (Some("user"), Some(USERNAME))
    );
    let again = poll(&sim, device_code).await;
    assert_eq!(error(&again), (400, "invalid_grant"));
    assert_eq!(control.grant_requests(DEVICE_CODE_GRANT), 3);
}

#[tokio::test]
async fn without_offline_access_the_device_flow_issues_no_refresh_token() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let (_, body) = start(&sim, PUBLIC_CLIENT_ID, MDE_SCOPE).await;
    let device_code = body["device_code"].as_str().expect("device_code");
    let user_code = body["user_code"].as_str().expect("user_code");
    assert!(sim.control().approve_device_code(user_code, USERNAME));
    let (status, body) = poll(&sim, device_code).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn declined_slowed_expired_and_unknown_codes_answer_their_rfc_8628_errors() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let control = sim.control();
    let (_, first) = start(&sim, PUBLIC_CLIENT_ID, MDE_SCOPE).await;
    let (_, second) = start(&sim, PUBLIC_CLIENT_ID, MDE_SCOPE).await;
    let code = |body: &Value| {
        body["device_code"]
            .as_str()
            .expect("device_code")
            .to_owned()
    };
    assert_eq!(
        control
            .wait_for_device_code(Duration::from_secs(1))
            .await
            .as_deref(),
        second["user_code"].as_str(),
        "the newest pending code"
    );
    control.set_slow_down(2);
    assert_eq!(error(&poll(&sim, &code(&first)).await), (400, "slow_down"));
    assert_eq!(error(&poll(&sim, &code(&first)).await), (400, "slow_down"));
    assert_eq!(
        error(&poll(&sim, &code(&first)).await),
        (400, "authorization_pending")
    );
    assert!(control.decline_device_code(first["user_code"].as_str().expect("user_code")));
    assert_eq!(
        error(&poll(&sim, &code(&first)).await),
        (400, "authorization_declined")
    );
    control.expire_device_codes();
    let expired = poll(&sim, &code(&second)).await;
    assert_eq!(
        (error(&expired), error_code(&expired.1)),
        ((400, "expired_token"), 70020)
    );
    assert_eq!(
        error(&poll(&sim, "no-such-code").await),
        (400, "bad_verification_code")
    );
    let (_, third) = start(&sim, PUBLIC_CLIENT_ID, MDE_SCOPE).await;
    assert_eq!(
        error(&poll(&sim, &code(&third)).await),
        (400, "authorization_pending")
    );
}

#[tokio::test]
async fn a_device_code_expires_when_its_lifetime_passes() {
    let options = SimOptions {
        device_code_lifetime: Duration::from_millis(50),
        ..user_options()
    };
    let sim = Sim::start(options).await.expect("sim");
    let (_, body) = start(&sim, PUBLIC_CLIENT_ID, MDE_SCOPE).await;
    let device_code = body["device_code"].as_str().expect("device_code");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let answer = poll(&sim, device_code).await;
        if error(&answer) == (400, "expired_token") {
            break;
        }
        assert_eq!(error(&answer), (400, "authorization_pending"));
        assert!(
            std::time::Instant::now() < deadline,
            "the code never expired"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_confidential_client_redeems_its_device_code_with_its_secret() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let (_, body) = start(&sim, CLIENT_ID, MDE_SCOPE).await;
    let device_code = body["device_code"].as_str().expect("device_code");
    let bare = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("client_id", CLIENT_ID),
        ("device_code", device_code),
    ];
    let (status, body) = token_request(&sim, &bare).await;
    assert_eq!((status, error_code(&body)), (400, 7000218));
    // A public client cannot redeem another client's code.
    assert_eq!(
        error(&poll(&sim, device_code).await),
        (400, "bad_verification_code")
    );
}
