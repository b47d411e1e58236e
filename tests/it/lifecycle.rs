//! The real binary's lifecycle under signals: SIGTERM drains in-flight requests and exits 0;
//! SIGHUP reloads the configuration.

use std::time::Duration;

use defender_sim::{Sim, SimOptions};
use serde_json::Value;

use crate::support::{BinaryProxy, client, eventually, mde_config};

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dtp-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("proxy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn sigterm_lets_a_slow_in_flight_request_finish_and_exits_zero() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let config = write_config("sigterm", &mde_config(&sim, "shutdown_grace = \"10s\""));
    let proxy = BinaryProxy::start(&config).await;
    let before = sim.control().api_requests();
    let slow = tokio::spawn(
        client()
            .get(format!("{}/mde/_sim/slow?ms=1500", proxy.url))
            .send(),
    );
    let control = sim.control();
    assert!(
        eventually(Duration::from_secs(5), || async {
            control.api_requests() > before
        })
        .await
    );

    proxy.signal("TERM");
    let response = slow.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["slept_ms"], 1500);
    let (status, logs) = proxy.exit().await;
    assert!(status.success(), "{status}");
    assert!(logs.contains("draining in-flight requests"), "{logs}");
    std::fs::remove_dir_all(config.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn sighup_reloads_the_configuration() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    // Only SIGHUP can trigger this reload: the file watcher would wait an hour.
    let text = mde_config(&sim, "watch_interval = \"1h\"");
    let config = write_config("sighup", &text);
    let proxy = BinaryProxy::start(&config).await;
    assert_eq!(
        client()
            .get(format!("{}/extra/api/alerts", proxy.url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let extra = format!(
        "{text}\n[[routes]]\nprefix = \"/extra\"\napi = \"mde\"\ncredential = \"app\"\nupstream = \"{}\"\n",
        sim.mde()
    );
    std::fs::write(&config, extra).unwrap();
    proxy.signal("HUP");
    let url = format!("{}/extra/api/alerts", proxy.url);
    let reloaded = eventually(Duration::from_secs(10), || async {
        client().get(&url).send().await.unwrap().status() == 200
    })
    .await;
    assert!(reloaded, "the new route did not appear after SIGHUP");
    proxy.signal("TERM");
    let (status, logs) = proxy.exit().await;
    assert!(status.success());
    assert!(logs.contains("SIGHUP: reloading the configuration"));
    std::fs::remove_dir_all(config.parent().unwrap()).unwrap();
}
