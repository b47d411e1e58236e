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

#[tokio::test]
async fn the_last_log_lines_reach_standard_error_when_the_proxy_exits_on_sigterm() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("dtp-last-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.toml");
    std::fs::write(&config, standard_config(&sim, "")).unwrap();
    let proxy = BinaryProxy::start(&config).await;
    let response = client()
        .get(format!("{}/mde/api/alerts", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    proxy.signal("TERM");
    let (status, logs) = proxy.exit().await;
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(&dir).unwrap();

    let messages: Vec<String> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["target"].as_str() == Some("defender_token_proxy::app"))
        .filter_map(|event| event["message"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        messages.last().map(String::as_str),
        Some("stopped"),
        "the proxy's last line is written before it exits: {logs}"
    );
    assert!(
        logs.lines()
            .any(|line| line.contains("\"path\":\"/mde/api/alerts\"")
                && line.contains("\"status\":200")),
        "the audit line is there: {logs}"
    );
}

#[tokio::test]
async fn log_lines_that_standard_error_cannot_take_are_dropped_and_counted_not_waited_for() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("dtp-dropped-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.toml");
    std::fs::write(&config, standard_config(&sim, "")).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_defender-token-proxy"))
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&config)
        .env("RUST_LOG", "trace")
        .env("SECRET", SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Read standard error up to the listening line, then never again: once the pipe is full,
    // every write to it blocks.
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut address = None;
    while let Some(line) = stderr.next_line().await.unwrap() {
        if let Ok(event) = serde_json::from_str::<Value>(&line)
            && let Some(listen) = event["listen"].as_str()
        {
            address = Some(listen.to_owned());
            break;
        }
    }
    let url = format!("http://{}", address.expect("the proxy listens"));
    let client = client();
    let metrics = |client: reqwest::Client, url: String| async move {
        let text = client
            .get(format!("{url}/-/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("defender_token_proxy_log_lines_dropped_total "))
            .expect("the dropped-lines counter is exposed")
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(metrics(client.clone(), url.clone()).await, 0);
    // Requests at TRACE level write a kilobyte or more of log lines each: soon more than the pipe
    // and the writer's buffer hold. Every request is still answered.
    let requests = async {
        for round in 0..400 {
            for _ in 0..50 {
                let response = client.get(format!("{url}/-/healthy")).send().await.unwrap();
                assert_eq!(response.status(), 200, "round {round}");
            }
            let dropped = metrics(client.clone(), url.clone()).await;
            if dropped > 0 {
                return dropped;
            }
        }
        0
    };
    let dropped = tokio::time::timeout(std::time::Duration::from_secs(60), requests)
        .await
        .expect("requests are answered while standard error takes nothing");
    assert!(dropped > 0, "no line was dropped");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    drop(stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}
