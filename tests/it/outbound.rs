//! Outbound HTTP proxies: with `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` naming a proxy, token
//! requests to a loopback authority still go direct, so no proxy ever sees a secret in a
//! plain-HTTP form or is asked for this host.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpListener;

use crate::login::{sim, workspace};
use crate::support::SECRET;

/// A "proxy" that counts the connections it gets and closes each at once.
async fn counting_proxy() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(connection);
        }
    });
    (url, count)
}

#[tokio::test]
async fn token_requests_to_a_loopback_authority_never_use_the_environments_proxy() {
    let sim = sim().await;
    let (_dir, config) = workspace(&sim);
    let (proxy, connections) = counting_proxy().await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_defender-token-proxy"));
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        command
            .env(name, &proxy)
            .env(name.to_ascii_lowercase(), &proxy);
    }
    let output = command
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env("SECRET", SECRET)
        .arg("--config")
        .arg(&config)
        .args(["token", "app", "--api", "graph"])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let token = String::from_utf8_lossy(&output.stdout);
    assert_eq!(token.trim().split('.').count(), 3, "{token}");
    assert!(sim.control().token_requests() >= 1);
    assert_eq!(connections.load(Ordering::SeqCst), 0, "the proxy was used");
}
