//! Health endpoints: `/-/healthy` for the process, `/-/ready` for the truth about tokens.

use defender_sim::SimOptions;
use serde_json::Value;

use crate::support::{TestProxy, standard_config};

#[tokio::test]
async fn healthy_answers_while_the_process_serves() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    let response = proxy.get("/-/healthy").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "healthy");
}

#[tokio::test]
async fn ready_is_200_when_every_routes_token_can_be_had() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    let response = proxy.get("/-/ready").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ready"], true);
    let tokens = body["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 4);
    assert!(
        tokens
            .iter()
            .all(|t| t["state"] == "valid" && t["expires_in_s"].as_u64() > Some(3000))
    );
    assert!(!body.to_string().contains("eyJ"), "no token in the answer");
}

#[tokio::test]
async fn ready_is_503_naming_the_failing_credential_and_its_aadsts_code() {
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        format!(
            "{}\n[credentials.broken]\ntype = \"client_secret\"\ntenant = \"contoso.onmicrosoft.com\"\n\
             client_id = \"{}\"\nclient_secret = \"not-the-secret\"\n\n\
             [[routes]]\nprefix = \"/broken\"\napi = \"mde\"\ncredential = \"broken\"\nupstream = \"{}\"\n",
            standard_config(sim, ""),
            crate::support::CLIENT_ID,
            sim.mde()
        )
    })
    .await;
    let response = proxy.get("/-/ready").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ready"], false);
    let tokens = body["tokens"].as_array().unwrap();
    let broken: Vec<&Value> = tokens.iter().filter(|t| t["state"] == "failing").collect();
    assert_eq!(broken.len(), 1, "{body}");
    assert_eq!(broken[0]["credential"], "broken");
    assert_eq!(broken[0]["error"]["aadsts"], serde_json::json!([7000215]));
    assert!(!body.to_string().contains("not-the-secret"));
    // The healthy credential's routes still work.
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
}

#[tokio::test]
async fn run_returns_when_its_shutdown_future_completes_and_the_port_closes() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    let address = proxy.url.trim_start_matches("http://").to_owned();
    proxy.stop().await;
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}
