//! Helpers shared by the simulator's own tests: an HTTP client and token requests against a running `Sim`.

use serde_json::Value;

use super::{Sim, SimClient, SimOptions};

/// The client id and secret of `SimOptions::default()`.
pub(super) const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub(super) const SECRET: &str = "demo-secret";
pub(super) const MDE_SCOPE: &str = "https://api.securitycenter.microsoft.com/.default";
/// The public client of `user_options()`, and the default user.
pub(super) const PUBLIC_CLIENT_ID: &str = "22222222-3333-4444-5555-666666666666";
pub(super) const USERNAME: &str = "analyst@contoso.onmicrosoft.com";
pub(super) const PASSWORD: &str = "correct horse";

/// The default options plus a public client, with device-code polling allowed at once.
pub(super) fn user_options() -> SimOptions {
    let mut options = SimOptions {
        device_code_interval: std::time::Duration::ZERO,
        ..SimOptions::default()
    };
    options.clients.push(SimClient::public(PUBLIC_CLIENT_ID));
    options
}

/// Signs the default user in with the password grant of the public client; returns the status and JSON body.
pub(super) async fn password_grant(sim: &Sim, scope: &str) -> (u16, Value) {
    let fields = [
        ("grant_type", "password"),
        ("client_id", PUBLIC_CLIENT_ID),
        ("username", USERNAME),
        ("password", PASSWORD),
        ("scope", scope),
    ];
    token_request(sim, &fields).await
}

/// The AADSTS code of an Entra error body.
pub(super) fn error_code(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().expect("error_codes")
}

/// A client that does not follow redirects, so tests see the simulator's own answers.
pub(super) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

/// Posts a token request with these form fields to the default tenant; returns the status and JSON body.
pub(super) async fn token_request(sim: &Sim, fields: &[(&str, &str)]) -> (u16, Value) {
    let tenant = SimOptions::default().tenant_id;
    token_request_for(sim, &tenant, fields).await
}

/// Posts a token request with these form fields to `tenant`.
pub(super) async fn token_request_for(
    sim: &Sim,
    tenant: &str,
    fields: &[(&str, &str)],
) -> (u16, Value) {
    let url = format!("{}/{tenant}/oauth2/v2.0/token", sim.authority());
    let response = http()
        .post(url)
        .form(fields)
        .send()
        .await
        .expect("token request");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.expect("token response is JSON"),
    )
}

/// Gets an access token for `scope` with the default client secret.
pub(super) async fn access_token(sim: &Sim, scope: &str) -> String {
    let fields = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
        ("scope", scope),
    ];
    let (status, body) = token_request(sim, &fields).await;
    assert_eq!(status, 200, "token request failed: {body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// GETs `url` with a bearer token; returns the status and JSON body.
pub(super) async fn get_json(url: &str, token: &str) -> (u16, Value) {
    let response = http()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("api request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("api response is JSON"))
}
