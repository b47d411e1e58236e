//! The token cache seen from outside: one Entra request for many callers, refresh ahead of expiry,
//! never an expired token, and per-credential and per-scope isolation.

use std::time::Duration;

use defender_sim::{EntraFault, SimClient, SimOptions, SimQuotas};
use futures_util::future::join_all;

use crate::support::{CLIENT_ID, TestProxy, client, eventually, standard_config};

#[tokio::test]
async fn token_is_fetched_once_for_64_concurrent_cold_requests() {
    // The proxy's own start-up warm-up is one more caller racing the 64.
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let http = client();
    let requests = (0..64).map(|_| http.get(format!("{}/mde/api/alerts", proxy.url)).send());
    for response in join_all(requests).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(proxy.control().token_requests(), 1);
    assert_eq!(proxy.control().unauthorized(), 0);
}

#[tokio::test]
async fn the_upstream_never_receives_an_expired_token_across_several_token_lifetimes() {
    let options = SimOptions {
        token_lifetime: Duration::from_secs(2),
        // Hundreds of calls in 7 s: far past MDE's quota, which this test is not about.
        quotas: SimQuotas::UNLIMITED,
        ..SimOptions::default()
    };
    let proxy = TestProxy::start_mde(options).await;
    let end = std::time::Instant::now() + Duration::from_millis(7_000);
    let workers = (0..4).map(|_| {
        let url = format!("{}/mde/api/machines", proxy.url);
        async move {
            let http = client();
            let mut served = 0;
            while std::time::Instant::now() < end {
                let response = http.get(&url).send().await.unwrap();
                assert_eq!(response.status(), 200, "{:?}", response.text().await);
                served += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            served
        }
    });
    let served: u32 = join_all(workers).await.into_iter().sum();
    let control = proxy.control();
    assert!(served > 100, "only {served} requests");
    assert_eq!(control.expired_tokens_seen(), 0);
    assert_eq!(control.unauthorized(), 0);
    // 7 s of 2 s tokens refreshed at half-life: at least 4 tokens, and not one per request.
    let tokens = control.token_requests();
    assert!((4..=20).contains(&tokens), "{tokens} token requests");
}

#[tokio::test]
async fn refresh_in_from_entra_triggers_a_background_refresh_while_the_old_token_serves() {
    let options = SimOptions {
        refresh_in: Some(Duration::from_secs(1)),
        ..SimOptions::default()
    };
    let proxy = TestProxy::start_mde(options).await;
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    assert_eq!(proxy.control().token_requests(), 1);
    // Past refresh_in, each request is still answered at once with the cached token, and one of
    // them starts the background refresh.
    let refreshed = eventually(Duration::from_secs(5), || async {
        assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
        proxy.control().token_requests() == 2
    })
    .await;
    assert!(refreshed, "no refresh after refresh_in");
}

#[tokio::test]
async fn a_valid_token_keeps_serving_while_entra_fails_and_refreshes_are_retried() {
    let options = SimOptions {
        token_lifetime: Duration::from_secs(60),
        refresh_in: Some(Duration::from_secs(1)),
        ..SimOptions::default()
    };
    let proxy = TestProxy::start_mde(options).await;
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    proxy.control().set_fault(Some(EntraFault::ServerError));
    // Refresh attempts fail (1, then again after the 1 s backoff) while requests keep working.
    let retried = eventually(Duration::from_secs(8), || async {
        assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
        proxy.control().token_requests() >= 3
    })
    .await;
    assert!(retried, "refresh was not retried");
    assert!(
        proxy.control().token_requests() <= 5,
        "refresh retries are backed off"
    );
    proxy.control().set_fault(None);
    assert!(
        eventually(Duration::from_secs(8), || async {
            proxy.get("/mde/api/alerts").await.status() == 200
                && matches!(proxy.get("/-/ready").await.status().as_u16(), 200)
        })
        .await
    );
}

#[tokio::test]
async fn expires_in_sent_as_a_string_is_understood() {
    let options = SimOptions {
        numbers_as_strings: true,
        ..SimOptions::default()
    };
    let proxy = TestProxy::start_mde(options).await;
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    assert_eq!(proxy.control().token_requests(), 1);
}

#[tokio::test]
async fn each_scope_gets_its_own_token_that_its_api_accepts() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    for path in [
        "/mde/api/alerts",
        "/xdr/api/incidents",
        "/graph/v1.0/security/alerts_v2",
        "/mdca/api/v1/alerts/",
    ] {
        let response = proxy.get(path).await;
        assert_eq!(
            response.status(),
            200,
            "{path}: {:?}",
            response.text().await
        );
    }
    // The simulated APIs check the audience, so a shared token would have been refused.
    assert_eq!(proxy.control().token_requests(), 4);
    assert_eq!(proxy.control().unauthorized(), 0);
}

#[tokio::test]
async fn different_credentials_for_the_same_scope_never_share_a_token() {
    let other_id = "99999999-8888-7777-6666-555555555555";
    let mut options = SimOptions::default();
    options
        .clients
        .push(SimClient::secret(other_id, "other-secret"));
    let proxy = TestProxy::start_with(options, |sim| {
        format!(
            "{}\n[credentials.other]\ntype = \"client_secret\"\ntenant = \"contoso.onmicrosoft.com\"\n\
             client_id = \"{other_id}\"\nclient_secret = \"other-secret\"\n\n\
             [[routes]]\nprefix = \"/other/mde\"\napi = \"mde\"\ncredential = \"other\"\nupstream = \"{}\"\n",
            standard_config(sim, ""),
            sim.mde()
        )
    })
    .await;
    let app = proxy.get("/mde/_sim/echo").await.text().await.unwrap();
    let other = proxy
        .get("/other/mde/_sim/echo")
        .await
        .text()
        .await
        .unwrap();
    let bearer = |echo: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(echo).unwrap();
        v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == "authorization")
            .map(|h| h[1].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_ne!(bearer(&app), bearer(&other));
    // Four routes' tokens for `app`, one for `other`.
    assert_eq!(proxy.control().token_requests(), 5);
}

#[tokio::test]
async fn a_certificate_credential_gets_tokens_with_a_signed_assertion() {
    let pem = include_bytes!("../fixtures/app-cert.pem");
    let options = SimOptions {
        clients: vec![SimClient::certificate(CLIENT_ID, pem)],
        ..SimOptions::default()
    };
    let proxy = TestProxy::start_with(options, |sim| {
        standard_config(sim, "").replace(
            "type = \"client_secret\"",
            "type = \"client_certificate\"\ncertificate = { file = \"tests/fixtures/app-cert.pem\" }",
        )
        .replace("client_secret = { env = \"SECRET\" }\n", "")
    })
    .await;
    let response = proxy.get("/mde/api/alerts").await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    // Each of the four routes' tokens needs its own fresh assertion: the simulator refuses a
    // replayed jti.
    assert_eq!(proxy.get("/xdr/api/incidents").await.status(), 200);
    assert!(proxy.get("/-/ready").await.status().is_success());
    assert_eq!(proxy.control().token_requests(), 4);
}

#[tokio::test]
async fn a_revoked_token_is_dropped_and_the_request_replayed_once_with_a_fresh_one() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    proxy.control().revoke_all_tokens();
    let echo: serde_json::Value = client()
        .post(format!("{}/mde/_sim/echo", proxy.url))
        .body("x".repeat(1000))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo["body_len"], 1000, "the body was replayed whole");
    assert_eq!(proxy.control().token_requests(), 2);
    assert_eq!(
        proxy.control().unauthorized(),
        1,
        "one refusal, then the replay succeeded"
    );
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
}

#[tokio::test]
async fn a_body_too_large_to_replay_gets_the_401_and_the_next_request_a_fresh_token() {
    // A small limit, so the body is past it yet fits in socket buffers before the upstream's
    // early 401 (a multi-MiB body would race the upstream closing the connection).
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        crate::support::mde_config(sim, "replay_max_body_bytes = 1024")
    })
    .await;
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    proxy.control().revoke_all_tokens();
    let large = client()
        .post(format!("{}/mde/_sim/count", proxy.url))
        .body(vec![0u8; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(large.status(), 401);
    assert!(
        large.headers().get("x-token-proxy-error").is_none(),
        "the upstream's own 401"
    );
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    assert_eq!(proxy.control().token_requests(), 2);
}

#[tokio::test]
async fn a_403_is_never_retried() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    assert_eq!(proxy.get("/mde/_sim/status/403").await.status(), 403);
    assert_eq!(proxy.get("/mde/_sim/status/403").await.status(), 403);
    assert_eq!(proxy.control().token_requests(), 1);
    assert_eq!(proxy.control().api_requests(), 2);
}

#[tokio::test]
async fn a_resource_that_always_answers_401_costs_at_most_one_extra_token() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    for _ in 0..5 {
        assert_eq!(proxy.get("/mde/_sim/status/401").await.status(), 401);
    }
    // The first 401 dropped the token and replayed once; later ones within the interval pass.
    assert_eq!(proxy.control().token_requests(), 2);
    assert_eq!(proxy.control().api_requests(), 6);
}
