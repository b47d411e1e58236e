//! Log hygiene, checked on the real binary: with every level enabled, no log line holds an access
//! token or a secret. A separate process, because tracing caches which call sites are enabled
//! process-wide, so a subscriber scoped to one test in a shared binary misses events.

use defender_sim::{Sim, SimOptions};
use serde_json::Value;

use crate::support::{BinaryProxy, CLIENT_ID, SECRET, client, echoed, standard_config};

#[tokio::test]
async fn no_log_line_at_any_level_holds_a_token_or_a_secret() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("dtp-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[credentials.broken]\ntype = \"client_secret\"\ntenant = \"contoso.onmicrosoft.com\"\n\
             client_id = \"{CLIENT_ID}\"\nclient_secret = \"wrong-secret-value\"\n\n\
             [[routes]]\nprefix = \"/broken\"\napi = \"mde\"\ncredential = \"broken\"\nupstream = \"{}\"\n",
            standard_config(&sim, ""),
            sim.mde()
        ),
    )
    .unwrap();
    let proxy = BinaryProxy::start(&config).await;
    let url = proxy.url.clone();

    let echo: Value = client()
        .get(format!(
            "{url}/mde/_sim/echo?$filter=title%20eq%20'secret-search-term'&$top=1"
        ))
        .header("authorization", "Bearer client-sent-token-value")
        .header("cookie", "session=cookie-value")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = echoed(&echo, "authorization").remove(0);
    let token = token.trim_start_matches("Bearer ").to_owned();
    let broken = client()
        .get(format!("{url}/broken/api/alerts"))
        .send()
        .await
        .unwrap();
    assert!(broken.status().is_server_error());
    let ready = client().get(format!("{url}/-/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    // SIGTERM: the proxy shuts down cleanly.
    proxy.signal("TERM");
    let (status, logs) = proxy.exit().await;
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(&dir).unwrap();

    assert!(
        logs.contains("token acquired"),
        "the proxy's events are captured"
    );
    assert!(
        logs.contains("AADSTS7000215"),
        "failures are logged with their code"
    );
    assert!(
        logs.contains("\"level\":\"TRACE\""),
        "every level is enabled"
    );
    for secret in [
        &token,
        SECRET,
        "wrong-secret-value",
        "client-sent-token-value",
        "cookie-value",
        "eyJ",
    ] {
        assert!(!logs.contains(secret), "a log line holds {secret:?}");
    }
}

#[tokio::test]
async fn a_gzip_body_that_does_not_decode_is_logged_once_at_warn_with_its_route() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("dtp-gzip-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.toml");
    std::fs::write(&config, standard_config(&sim, "")).unwrap();
    let proxy = BinaryProxy::start(&config).await;
    // Cut off: in the head already when the body fails before hyper has flushed it.
    let response = client()
        .get(format!("{}/mde/_sim/gzip/truncated", proxy.url))
        .send()
        .await;
    if let Ok(response) = response {
        assert!(response.bytes().await.is_err(), "the body is cut off");
    }
    proxy.signal("TERM");
    let (status, logs) = proxy.exit().await;
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(&dir).unwrap();

    let warnings: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| {
            event["message"]
                .as_str()
                .is_some_and(|m| m.contains("gzip body did not decode"))
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert_eq!(warnings[0]["level"], "WARN");
    assert_eq!(warnings[0]["route"], "/mde");
    assert_eq!(
        warnings[0]["span"]["path"], "/mde/_sim/gzip/truncated",
        "in the request's span"
    );
    assert!(!logs.contains("panicked"), "{logs}");
}
