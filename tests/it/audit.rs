//! The audit line of the real binary at the default log filter, where it is written without a
//! request span: one line per request with the span's fields (route, credential and tenant of a
//! forwarded request included), in both formats; and a refusal's own line still in the request's
//! span.

use defender_sim::{Sim, SimOptions};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{SECRET, client, standard_config};

/// Runs the binary with `format` and the default filter, sends a forwarded request and one to an
/// unknown route, stops it with SIGTERM and returns its standard error.
async fn logs_of(format: &str) -> String {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("dtp-audit-{format}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.toml");
    std::fs::write(&config, standard_config(&sim, "")).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_defender-token-proxy"))
        .args(["serve", "--log-format", format, "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .env("SECRET", SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut logs = String::new();
    let mut address = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        logs.push_str(&line);
        logs.push('\n');
        if let Some(rest) = line
            .split("listen=")
            .nth(1)
            .or_else(|| line.split("\"listen\":\"").nth(1))
        {
            address = rest.split([' ', '"']).next().map(str::to_owned);
            break;
        }
    }
    let url = format!("http://{}", address.expect("the proxy listens"));
    let forwarded = client()
        .get(format!(
            "{url}/mde/api/alerts?$top=1&$filter=title%20eq%20'x'"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), 200);
    let unknown = client()
        .get(format!("{url}/nope?q=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    while let Some(line) = lines.next_line().await.unwrap() {
        logs.push_str(&line);
        logs.push('\n');
    }
    assert!(child.wait().await.unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
    logs
}

#[tokio::test]
async fn a_forwarded_request_has_one_json_audit_line_with_its_route_credential_and_tenant() {
    let logs = logs_of("json").await;
    let events: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let audit: Vec<&Value> = events
        .iter()
        .filter(|e| e["target"] == "tower_http::trace::on_response")
        .collect();
    assert_eq!(audit.len(), 2, "{logs}");
    let line = audit[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["message"], "request");
    assert_eq!(line["status"], 200);
    assert!(line["latency_ms"].as_f64().unwrap() > 0.0, "{line}");
    assert!(line["upstream_request_id"].is_string(), "{line}");
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");
    let span = &line["span"];
    assert_eq!(span["name"], "request");
    assert_eq!(span["method"], "GET");
    assert_eq!(span["path"], "/mde/api/alerts");
    assert_eq!(span["query"], "$top&$filter", "no query values");
    assert_eq!(span["route"], "/mde");
    assert_eq!(span["credential"], "app");
    assert!(!span["tenant"].as_str().unwrap().is_empty(), "{line}");
    assert_eq!(line["spans"], serde_json::json!([span]));
    assert!(!logs.contains("title"), "no query value is logged");

    let unknown = audit[1];
    assert_eq!(unknown["status"], 404);
    assert_eq!(unknown["span"]["path"], "/nope");
    assert!(unknown["span"].get("route").is_none(), "{unknown}");
    // The refusal's own line, in a span made for it.
    let refused = events
        .iter()
        .find(|e| e["message"] == "request refused")
        .expect("the refusal is logged");
    assert_eq!(refused["kind"], "unknown_route");
    assert_eq!(refused["span"]["path"], "/nope", "in the request's span");
}

#[tokio::test]
async fn a_forwarded_request_has_one_text_audit_line_with_its_route_credential_and_tenant() {
    let logs = logs_of("text").await;
    let audit: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("tower_http::trace::on_response"))
        .collect();
    assert_eq!(audit.len(), 2, "{logs}");
    let forwarded = audit[0];
    let prefix = " INFO request{method=GET path=/mde/api/alerts query=$top&$filter \
                  route=\"/mde\" credential=\"app\" tenant=\"";
    assert_eq!(&forwarded[28..28 + prefix.len()], prefix, "{forwarded}");
    assert!(
        forwarded.contains("}: tower_http::trace::on_response: request status=200 latency_ms="),
        "{forwarded}"
    );
    assert!(forwarded.contains(" upstream_request_id=\""), "{forwarded}");
    assert!(
        audit[1].contains(
            " INFO request{method=GET path=/nope query=q}: tower_http::trace::on_response: \
             request status=404 latency_ms="
        ),
        "{}",
        audit[1]
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("request{method=GET path=/nope query=q}: ")
                && l.contains("request refused")),
        "the refusal is in the request's span: {logs}"
    );
}
