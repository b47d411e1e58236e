//! Live reload: a rotated secret or config picked up, an invalid one refused, tokens kept for the
//! credentials that did not change, and rate-limit state kept for the routes whose limits did not.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use defender_sim::{Sim, SimClient, SimOptions};
use defender_token_proxy::config::{ConfigSource, Overrides};
use serde_json::Value;

use crate::support::{CLIENT_ID, SECRET, TestProxy, echoed, eventually, mde_config};

/// A config file in a fresh directory, with the client secret in its own file.
struct ConfigDir {
    dir: PathBuf,
}

impl ConfigDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dtp-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn write(&self, file: &str, content: &str) {
        // Write then rename, as Kubernetes and editors do, so the watcher never reads half a file.
        let temp = self.dir.join(format!(".{file}.tmp"));
        std::fs::write(&temp, content).unwrap();
        std::fs::rename(&temp, self.dir.join(file)).unwrap();
    }

    fn source(&self) -> ConfigSource {
        ConfigSource::file(
            self.dir.join("proxy.toml"),
            Overrides::default(),
            Arc::new(|_: &str| None),
        )
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn file_config(sim: &Sim, client_id: &str) -> String {
    mde_config(sim, "watch_interval = \"50ms\"")
        .replace("{ env = \"SECRET\" }", "{ file = \"client-secret\" }")
        .replace(CLIENT_ID, client_id)
}

#[tokio::test]
async fn a_rotated_secret_file_is_picked_up_without_a_restart() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let files = ConfigDir::new("rotate-secret");
    files.write("proxy.toml", &file_config(&sim, CLIENT_ID));
    files.write("client-secret", "the-expired-secret\n");
    let proxy = TestProxy::start_from(sim, files.source()).await;
    assert_eq!(
        proxy.get("/mde/api/alerts").await.status().as_u16() / 100,
        5
    );

    files.write("client-secret", &format!("{SECRET}\n"));
    let recovered = eventually(Duration::from_secs(10), || async {
        proxy.get("/mde/api/alerts").await.status() == 200
    })
    .await;
    assert!(
        recovered,
        "the rotated secret was not picked up: {}",
        proxy.admin("/-/status").await.text().await.unwrap()
    );
    let status: Value = proxy.admin("/-/status").await.json().await.unwrap();
    assert_eq!(status["config"]["last_reload"]["applied"], true);
    assert_eq!(
        proxy
            .metric(r#"defender_token_proxy_config_reloads_total{outcome="applied"}"#)
            .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn a_changed_credential_drops_its_tokens_and_an_unchanged_one_keeps_them() {
    let other = "99999999-8888-7777-6666-555555555555";
    let mut options = SimOptions::default();
    options.clients.push(SimClient::secret(other, SECRET));
    let sim = Sim::start(options).await.unwrap();
    let files = ConfigDir::new("rotate-app");
    files.write("proxy.toml", &file_config(&sim, CLIENT_ID));
    files.write("client-secret", SECRET);
    let proxy = TestProxy::start_from(sim, files.source()).await;
    let bearer = || async {
        let echo: Value = proxy.get("/mde/_sim/echo").await.json().await.unwrap();
        echoed(&echo, "authorization").remove(0)
    };
    let first = bearer().await;
    assert_eq!(bearer().await, first, "cached");

    // Unchanged credential, one more route: its token stays cached.
    let with_route = format!(
        "{}\n[[routes]]\nprefix = \"/mde2\"\napi = \"mde\"\ncredential = \"app\"\nupstream = \"{}\"\n",
        file_config(&proxy.sim, CLIENT_ID),
        proxy.sim.mde()
    );
    files.write("proxy.toml", &with_route);
    assert!(
        eventually(Duration::from_secs(10), || async {
            proxy.get("/mde2/api/alerts").await.status() == 200
        })
        .await
    );
    assert_eq!(
        bearer().await,
        first,
        "an unchanged credential keeps its token"
    );
    assert_eq!(proxy.control().token_requests(), 1);

    // Another app registration: the old token must never be injected again.
    files.write("proxy.toml", &file_config(&proxy.sim, other));
    assert!(
        eventually(Duration::from_secs(10), || async {
            bearer().await != first
        })
        .await
    );
    assert_eq!(proxy.control().token_requests(), 2);
}

#[tokio::test]
async fn an_invalid_new_config_is_refused_and_the_old_one_keeps_serving() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let files = ConfigDir::new("invalid-reload");
    let good = file_config(&sim, CLIENT_ID);
    files.write("proxy.toml", &good);
    files.write("client-secret", SECRET);
    let proxy = TestProxy::start_from(sim, files.source()).await;
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);

    files.write(
        "proxy.toml",
        &good.replace("credential = \"app\"", "credential = \"missing\""),
    );
    let refused = eventually(Duration::from_secs(10), || async {
        proxy
            .metric(r#"defender_token_proxy_config_reloads_total{outcome="refused"}"#)
            .await
            == Some(1.0)
    })
    .await;
    assert!(refused, "the invalid config was not refused");
    let status: Value = proxy.admin("/-/status").await.json().await.unwrap();
    let reload = &status["config"]["last_reload"];
    assert_eq!(reload["applied"], false);
    assert!(
        reload["error"]
            .as_str()
            .unwrap()
            .contains("routes[0].credential"),
        "{reload}"
    );
    assert_eq!(
        proxy.get("/mde/api/alerts").await.status(),
        200,
        "the old config keeps serving"
    );
    assert_eq!(proxy.control().token_requests(), 1);
}

#[tokio::test]
async fn a_reload_with_a_number_beyond_the_runtime_is_refused_naming_it_and_a_later_change_applies()
{
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let files = ConfigDir::new("huge-reload");
    let good = file_config(&sim, CLIENT_ID);
    files.write("proxy.toml", &good);
    files.write("client-secret", SECRET);
    let proxy = TestProxy::start_from(sim, files.source()).await;
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    let with = |n: &str| {
        good.replace(
            "watch_interval = \"50ms\"",
            &format!("watch_interval = \"50ms\"\nmax_concurrent_requests = {n}"),
        )
    };
    // 2^63 - 1: more than a tokio semaphore holds, which used to panic the reload task.
    files.write("proxy.toml", &with("9223372036854775807"));
    let refused = eventually(Duration::from_secs(10), || async {
        proxy
            .metric(r#"defender_token_proxy_config_reloads_total{outcome="refused"}"#)
            .await
            == Some(1.0)
    })
    .await;
    assert!(refused, "the config was not refused");
    let status: Value = proxy.admin("/-/status").await.json().await.unwrap();
    let error = status["config"]["last_reload"]["error"].as_str().unwrap();
    assert!(error.contains("server.max_concurrent_requests"), "{error}");
    files.write("proxy.toml", &with("8"));
    assert!(
        reloaded(&proxy, 1.0).await,
        "the later change was not applied"
    );
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
}

/// The /mde route limited to 2 requests a minute, answering 429 at once past them; `server_extra`
/// goes into `[server]`.
fn limited_config(sim: &Sim, server_extra: &str, per_minute: u32) -> String {
    let server =
        format!("watch_interval = \"50ms\"\nrate_limit_max_wait = \"100ms\"\n{server_extra}");
    format!(
        "{}rate_limit = {{ per_minute = {per_minute} }}\n",
        mde_config(sim, &server).replace("{ env = \"SECRET\" }", "{ file = \"client-secret\" }")
    )
}

/// Waits until `n` reloads have been applied.
async fn reloaded(proxy: &TestProxy, n: f64) -> bool {
    eventually(Duration::from_secs(10), || async {
        proxy
            .metric(r#"defender_token_proxy_config_reloads_total{outcome="applied"}"#)
            .await
            == Some(n)
    })
    .await
}

#[tokio::test]
async fn a_reload_keeps_a_spent_allowance_unless_the_route_limits_change() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let files = ConfigDir::new("keep-allowance");
    files.write("client-secret", &format!("{SECRET}\n"));
    files.write("proxy.toml", &limited_config(&sim, "", 2));
    let proxy = TestProxy::start_from(sim, files.source()).await;
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 429);

    // A change elsewhere in the config: the route's limiter, with its spent allowance, stays.
    let elsewhere = "allowed_hosts = [\"proxy.internal\"]";
    files.write("proxy.toml", &limited_config(&proxy.sim, elsewhere, 2));
    assert!(
        reloaded(&proxy, 1.0).await,
        "the first change was not applied"
    );
    assert_eq!(
        proxy.get("/mde/api/alerts").await.status(),
        429,
        "a reload that left the route's limits as they were let a new burst through"
    );

    // New limits make a new limiter.
    files.write("proxy.toml", &limited_config(&proxy.sim, elsewhere, 5));
    assert!(
        reloaded(&proxy, 2.0).await,
        "the second change was not applied"
    );
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    assert_eq!(proxy.control().api_requests(), 3);
}

#[tokio::test]
async fn a_reload_keeps_a_spent_budget_spent_when_a_route_moves_and_the_wait_changes() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let files = ConfigDir::new("keep-budget");
    files.write("client-secret", &format!("{SECRET}\n"));
    files.write("proxy.toml", &limited_config(&sim, "", 2));
    let proxy = TestProxy::start_from(sim, files.source()).await;
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);

    // Another prefix and a longer wait: the budget (same limits, app and tenant) stays spent, and
    // the request would wait its turn (until the two calls leave the minute's window, 60 to 61 s
    // after they went) rather than being let through.
    let moved = limited_config(&proxy.sim, "", 2)
        .replace("prefix = \"/mde\"", "prefix = \"/defender\"")
        .replace(
            "rate_limit_max_wait = \"100ms\"",
            "rate_limit_max_wait = \"10s\"",
        );
    files.write("proxy.toml", &moved);
    assert!(reloaded(&proxy, 1.0).await, "the change was not applied");
    let refused = proxy.get("/defender/api/alerts").await;
    assert_eq!(
        refused.status(),
        429,
        "a reload that kept the budget's key let a new burst through"
    );
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((59..=61).contains(&retry_after), "{retry_after}");
    assert_eq!(proxy.control().api_requests(), 2);
}
