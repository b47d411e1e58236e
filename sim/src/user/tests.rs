//! Tests of the password grant and of what every user grant answers.

use serde_json::Value;

use super::super::test_support::{
    CLIENT_ID, MDE_SCOPE, PASSWORD, PUBLIC_CLIENT_ID, SECRET, USERNAME, error_code, get_json,
    password_grant, token_request, user_options,
};
use super::super::{Sim, SimOptions};

#[tokio::test]
async fn password_grant_issues_a_user_token_the_apis_accept() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let (status, body) = password_grant(&sim, MDE_SCOPE).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    assert_eq!(
        body["scope"],
        "https://api.securitycenter.microsoft.com/Alert.Read https://api.securitycenter.microsoft.com/Machine.Read \
         https://api.securitycenter.microsoft.com/SecurityAlert.Read.All"
    );
    let token = body["access_token"].as_str().expect("access_token");
    let (status, me) = get_json(&format!("{}/_sim/whoami", sim.mde()), token).await;
    assert_eq!(status, 200);
    assert_eq!(me["idtyp"], "user");
    assert_eq!(me["appid"], PUBLIC_CLIENT_ID);
    assert_eq!(me["upn"], USERNAME);
    assert_eq!(me["scp"], "Alert.Read Machine.Read SecurityAlert.Read.All");
    assert_eq!(me["roles"], serde_json::json!([]));
    assert_eq!(me["tid"], SimOptions::default().tenant_id.as_str());
    let (status, _) = get_json(&format!("{}/api/alerts", sim.mde()), token).await;
    assert_eq!(status, 200);
    assert_eq!(sim.control().grant_requests("password"), 1);
}

#[tokio::test]
async fn password_grant_with_offline_access_and_openid_adds_refresh_and_id_tokens() {
    let options = SimOptions {
        numbers_as_strings: true,
        ..user_options()
    };
    let sim = Sim::start(options).await.expect("sim");
    let scope = "https://graph.microsoft.com/.default offline_access openid profile";
    let (status, body) = password_grant(&sim, scope).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], "3599");
    assert!(body["refresh_token"].as_str().is_some_and(|t| t.len() > 32));
    assert_eq!(
        body["id_token"].as_str().map(|t| t.split('.').count()),
        Some(3)
    );
    let scopes = body["scope"].as_str().unwrap_or_default();
    assert!(
        scopes.ends_with(" offline_access openid profile"),
        "{scopes}"
    );
}

#[tokio::test]
async fn password_grant_with_a_wrong_password_or_user_is_refused_with_aadsts50126() {
    let sim = Sim::start(user_options()).await.expect("sim");
    for (username, password) in [
        (USERNAME, "wrong"),
        ("nobody@contoso.onmicrosoft.com", PASSWORD),
    ] {
        let fields = [
            ("grant_type", "password"),
            ("client_id", PUBLIC_CLIENT_ID),
            ("username", username),
            ("password", password),
            ("scope", MDE_SCOPE),
        ];
        let (status, body) = token_request(&sim, &fields).await;
        assert_eq!(
            (status, body["error"].as_str(), error_code(&body)),
            (400, Some("invalid_grant"), 50126)
        );
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(description.starts_with(
            "AADSTS50126: Error validating credentials due to invalid username or password."
        ));
    }
}

#[tokio::test]
async fn user_grant_scopes_need_exactly_one_known_resource() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let code = |body: (u16, Value)| (body.0, error_code(&body.1));
    assert_eq!(
        code(password_grant(&sim, "openid offline_access").await),
        (400, 70011)
    );
    assert_eq!(code(password_grant(&sim, "User.Read").await), (400, 70011));
    let two = "https://graph.microsoft.com/User.Read https://api.security.microsoft.com/.default";
    assert_eq!(code(password_grant(&sim, two).await), (400, 700022));
    assert_eq!(
        code(password_grant(&sim, "https://management.azure.com/.default").await),
        (400, 500011)
    );
    let permissions = "05a65629-4c1b-48c1-a78b-804c4abdd4af/Investigation.read 05a65629-4c1b-48c1-a78b-804c4abdd4af/Alert.Read";
    assert_eq!(password_grant(&sim, permissions).await.0, 200);
}

#[tokio::test]
async fn public_clients_must_not_and_confidential_clients_must_authenticate() {
    let sim = Sim::start(user_options()).await.expect("sim");
    let with_secret = [
        ("grant_type", "password"),
        ("client_id", PUBLIC_CLIENT_ID),
        ("client_secret", SECRET),
        ("username", USERNAME),
        ("password", PASSWORD),
        ("scope", MDE_SCOPE),
    ];
    let (status, body) = token_request(&sim, &with_secret).await;
    assert_eq!((status, error_code(&body)), (401, 700025));
    let confidential = [
        ("grant_type", "password"),
        ("client_id", CLIENT_ID),
        ("username", USERNAME),
        ("password", PASSWORD),
        ("scope", MDE_SCOPE),
    ];
    let (status, body) = token_request(&sim, &confidential).await;
    assert_eq!((status, error_code(&body)), (400, 7000218));
    let client_credentials = [
        ("grant_type", "client_credentials"),
        ("client_id", PUBLIC_CLIENT_ID),
        ("scope", MDE_SCOPE),
    ];
    let (status, body) = token_request(&sim, &client_credentials).await;
    assert_eq!((status, error_code(&body)), (400, 7000218));
}
