//! Operations: metrics that move with traffic, status that tells the token states without the
//! tokens, a drained shutdown, inbound API keys and the healthcheck command.

use std::time::Duration;

use defender_sim::SimOptions;
use serde_json::Value;

use crate::support::{SECRET, TestProxy, client, echoed, eventually, mde_config};

#[tokio::test]
async fn metrics_move_with_traffic() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let ok = r#"defender_token_proxy_requests_total{route="/mde",status_class="2xx"}"#;
    for _ in 0..3 {
        assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    }
    assert_eq!(proxy.get("/mde/_sim/status/503").await.status(), 503);
    assert_eq!(proxy.get("/elsewhere").await.status(), 404);
    assert_eq!(proxy.metric(ok).await, Some(3.0));
    assert_eq!(
        proxy
            .metric(r#"defender_token_proxy_requests_total{route="/mde",status_class="5xx"}"#)
            .await,
        Some(1.0)
    );
    assert_eq!(
        proxy
            .metric(r#"defender_token_proxy_requests_total{route="-",status_class="4xx"}"#)
            .await,
        Some(1.0)
    );
    assert_eq!(
        proxy
            .metric(r#"defender_token_proxy_upstream_duration_seconds_count{route="/mde"}"#)
            .await,
        Some(4.0)
    );
    assert_eq!(
        proxy.metric(r#"defender_token_proxy_token_requests_total{credential="app",tenant="contoso.onmicrosoft.com",outcome="success"}"#).await,
        Some(1.0)
    );
    assert!(
        proxy
            .metric(r#"defender_token_proxy_token_cache_lookups_total{result="hit"}"#)
            .await
            >= Some(3.0)
    );
    let expiry = proxy
        .metric(r#"defender_token_proxy_token_expiry_seconds{credential="app",tenant="contoso.onmicrosoft.com",scope="https://api.securitycenter.microsoft.com/.default"}"#)
        .await
        .unwrap();
    assert!((3000.0..3600.0).contains(&expiry), "{expiry}");
    assert_eq!(proxy.metric("defender_token_proxy_ready").await, Some(1.0));
    // More traffic, and the counter follows.
    assert_eq!(proxy.get("/mde/api/machines").await.status(), 200);
    assert_eq!(proxy.metric(ok).await, Some(4.0));
    let text = proxy.admin("/-/metrics").await.text().await.unwrap();
    assert!(!text.contains(SECRET) && !text.contains("eyJ"));
}

#[tokio::test]
async fn a_failing_credential_shows_in_metrics_and_status() {
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        mde_config(sim, "").replace("{ env = \"SECRET\" }", "\"wrong-secret-value\"")
    })
    .await;
    assert!(
        proxy
            .get("/mde/api/alerts")
            .await
            .status()
            .is_server_error()
    );
    assert!(
        proxy
            .metric(r#"defender_token_proxy_token_requests_total{credential="app",tenant="contoso.onmicrosoft.com",outcome="rejected"}"#)
            .await
            >= Some(1.0)
    );
    assert_eq!(proxy.metric("defender_token_proxy_ready").await, Some(0.0));
    let status: Value = proxy.admin("/-/status").await.json().await.unwrap();
    let token = &status["tokens"][0];
    assert_eq!(token["state"], "failing");
    assert_eq!(token["last_error"]["aadsts"], serde_json::json!([7000215]));
    assert!(!status.to_string().contains("wrong-secret-value"));
}

#[tokio::test]
async fn status_lists_routes_credentials_and_token_states_but_never_a_token() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    for base in [&proxy.url, &proxy.admin_url] {
        let status: Value = client()
            .get(format!("{base}/-/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status["routes"][0]["prefix"], "/mde");
        assert_eq!(
            status["routes"][0]["upstream"],
            format!("{}/", proxy.sim.mde())
        );
        assert_eq!(status["credentials"][0]["name"], "app");
        assert_eq!(status["credentials"][0]["type"], "client_secret");
        let token = &status["tokens"][0];
        assert_eq!(token["state"], "valid");
        assert!(token["valid_until"].as_str().unwrap().ends_with('Z'));
        assert!(token["last_refresh"].is_string());
        assert_eq!(
            token["permissions"],
            serde_json::json!([
                "Alert.Read.All",
                "Machine.Read.All",
                "Incident.Read.All",
                "SecurityAlert.Read.All"
            ])
        );
        assert!(
            !status.to_string().contains("eyJ"),
            "no token in the status"
        );
        assert!(!status.to_string().contains(SECRET));
    }
}

#[tokio::test]
async fn a_slow_in_flight_request_completes_after_shutdown_starts_and_readiness_turns_503() {
    let mut proxy = TestProxy::start_mde(SimOptions::default()).await;
    assert_eq!(proxy.admin("/-/ready").await.status(), 200);
    let slow = proxy.in_flight("/mde/_sim/slow?ms=1500").await;
    let stopped = proxy.begin_stop();
    assert!(
        eventually(Duration::from_secs(2), || async {
            proxy.admin("/-/ready").await.status() == 503
        })
        .await,
        "readiness turns 503 once shutdown starts"
    );
    let response = slow.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["slept_ms"], 1500);
    stopped.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(proxy.url.trim_start_matches("http://"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_grace_period_bounds_the_drain() {
    let mut proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        mde_config(sim, "shutdown_grace = \"300ms\"")
    })
    .await;
    let slow = proxy.in_flight("/mde/_sim/slow?ms=20000").await;
    let started = std::time::Instant::now();
    proxy.begin_stop().await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    slow.abort();
}

#[tokio::test]
async fn api_keys_guard_the_listener_and_never_reach_the_upstream() {
    const KEY: &str = "current-key-0123456789";
    const NEXT: &str = "next-key-abcdefghijklmn";
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        mde_config(sim, &format!("api_keys = [\"{KEY}\", \"{NEXT}\"]"))
    })
    .await;
    let url = format!("{}/mde/_sim/echo", proxy.url);
    let missing = client().get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["x-token-proxy-error"], "unauthenticated");
    assert!(missing.headers().contains_key("www-authenticate"));
    let wrong = client()
        .get(&url)
        .header("x-api-key", "not-the-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(proxy.control().api_requests(), 0);

    for (header, value) in [
        ("x-api-key", KEY.to_owned()),
        ("x-api-key", NEXT.to_owned()),
        ("authorization", format!("Bearer {KEY}")),
    ] {
        let response = client()
            .get(&url)
            .header(header, &value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{header}");
        let echo: Value = response.json().await.unwrap();
        assert!(echoed(&echo, "x-api-key").is_empty());
        let authorization = echoed(&echo, "authorization");
        assert_eq!(authorization.len(), 1);
        assert!(
            !authorization[0].contains(KEY),
            "the key never reaches the upstream"
        );
    }
    assert_eq!(
        proxy.get("/-/healthy").await.status(),
        200,
        "liveness needs no key"
    );
    assert_eq!(proxy.get("/-/ready").await.status(), 401);
    assert_eq!(
        proxy.admin("/-/ready").await.status(),
        200,
        "the admin listener needs no key"
    );
}

#[tokio::test]
async fn the_healthcheck_command_reports_what_the_url_answers() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let healthcheck = |url: String| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_defender-token-proxy"))
            .args(["healthcheck", "--url", &url])
            .output()
            .await
            .unwrap()
    };
    assert!(
        healthcheck(format!("{}/-/ready", proxy.admin_url))
            .await
            .status
            .success()
    );
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let refused = healthcheck(format!("http://{closed}/-/healthy")).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("healthcheck"));
    let not_found = healthcheck(format!("{}/-/nope", proxy.admin_url)).await;
    assert_eq!(not_found.status.code(), Some(1));
}
