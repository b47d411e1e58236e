//! Budgets shared between replicas through a real Redis (Debian's `redis-server`, started on a
//! free port): two proxy processes on one store let through one budget in total, driven flat out
//! they never let more than it into any window the simulator counts, and a store killed mid-run
//! leaves every request answered from the local budgets, which reconnect once it is back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use defender_sim::{Sim, SimOptions};
use serde_json::Value;

use crate::budgets::{SHORT_BUDGET, flat_out, short_quota};
use crate::support::{BinaryProxy, client, eventually, mde_config};

/// The password the servers require: the URL holds it, and no log line may.
const PASSWORD: &str = "it-store-password-never-logged";

/// A `redis-server` of its own: no persistence, loopback only, in a scratch directory, with a
/// password.
struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one on a free port, or `None` (with the reason printed) where `redis-server` is
    /// not installed; under CI (`CI` set) a missing server fails the test instead, since .ci/run
    /// installs it.
    fn start(name: &str) -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok();
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed, and CI is set: .ci/run installs it"
            );
            eprintln!("skipped: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("dtp-redis-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // The port is free when bound here; another process may take it before redis-server
        // does, so a server that exits at once is tried again on another.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if let Some(server) = Self::on(port, &dir) {
                return Some(server);
            }
        }
        panic!("redis-server did not start on any of five free ports");
    }

    /// Starts one on `port` and waits until it accepts connections; `None` if it exits first.
    fn on(port: u16, dir: &Path) -> Option<Self> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--requirepass", PASSWORD])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return None;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self {
                    child,
                    port,
                    dir: dir.to_owned(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    fn url(&self) -> String {
        format!("redis://:{PASSWORD}@127.0.0.1:{}/0", self.port)
    }

    /// SIGKILL: no goodbye to its clients.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The /mde route limited to `per_minute`, answering 429 at once past it, drawing on `store`.
fn write_config(sim: &Sim, name: &str, store: &str, per_minute: u32) -> PathBuf {
    write_config_with(
        sim,
        name,
        store,
        "100ms",
        &format!("rate_limit = {{ per_minute = {per_minute} }}\n"),
    )
}

/// The /mde route limited by `rate_limit` (a TOML line), waiting up to `max_wait`, drawing on
/// `store`.
fn write_config_with(
    sim: &Sim,
    name: &str,
    store: &str,
    max_wait: &str,
    rate_limit: &str,
) -> PathBuf {
    let server = format!(
        "rate_limit_max_wait = \"{max_wait}\"\nrate_limit_store = \"{store}\"\nrate_limit_prefix = \"it-{name}:\""
    );
    let text = format!("{}{rate_limit}", mde_config(sim, &server));
    let dir = std::env::temp_dir().join(format!("dtp-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("proxy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The store's state in the proxy's `/-/ready` answer.
async fn store_state(proxy: &BinaryProxy) -> String {
    let ready: Value = client()
        .get(format!("{}/-/ready", proxy.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ready["rate_limit_store"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn until_state(proxy: &BinaryProxy, state: &str) -> bool {
    eventually(Duration::from_secs(10), || async {
        store_state(proxy).await == state
    })
    .await
}

async fn get(proxy: &BinaryProxy, path: &str) -> u16 {
    client()
        .get(format!("{}{path}", proxy.url))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn two_proxy_processes_on_one_redis_let_through_one_budget_in_total() {
    let Some(redis) = RedisServer::start("two-replicas") else {
        return;
    };
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let config = write_config(&sim, "two-replicas", &redis.url(), 5);
    let (one, two) = (
        BinaryProxy::start(&config).await,
        BinaryProxy::start(&config).await,
    );
    assert!(
        until_state(&one, "connected").await,
        "{}",
        store_state(&one).await
    );
    assert!(
        until_state(&two, "connected").await,
        "{}",
        store_state(&two).await
    );

    let before = sim.control().api_requests();
    let mut admitted = 0;
    for i in 0..12 {
        let proxy = if i % 2 == 0 { &one } else { &two };
        match get(proxy, "/mde/api/alerts").await {
            200 => admitted += 1,
            429 => {}
            other => panic!("request {i} got {other}"),
        }
    }
    assert_eq!(admitted, 5, "two replicas let through more than one budget");
    assert_eq!(sim.control().api_requests() - before, 5);
    let status: Value = client()
        .get(format!("{}/-/status", one.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let store = &status["rate_limits"]["store"];
    assert_eq!(store["url"], format!("redis://127.0.0.1:{}/0", redis.port));
    let shared = &status["rate_limits"]["budgets"][0];
    assert_eq!(shared["shared"], true, "{status}");
    assert_eq!(shared["remaining_minute"], 0, "{status}");
    for proxy in [&one, &two] {
        let logs = proxy.logs.lock().unwrap().clone();
        assert!(logs.contains("rate limit store connected"), "{logs}");
        assert!(
            !logs.contains(PASSWORD),
            "a log line holds the store's password"
        );
    }
    assert!(!status.to_string().contains(PASSWORD));
    std::fs::remove_dir_all(config.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn two_proxy_processes_driven_flat_out_on_one_redis_never_meet_the_upstreams_429() {
    let Some(redis) = RedisServer::start("flat-out") else {
        return;
    };
    let sim = Sim::start(short_quota()).await.unwrap();
    let config = write_config_with(&sim, "flat-out", &redis.url(), "10s", SHORT_BUDGET);
    let (one, two) = (
        BinaryProxy::start(&config).await,
        BinaryProxy::start(&config).await,
    );
    for proxy in [&one, &two] {
        assert!(
            until_state(proxy, "connected").await,
            "{}",
            store_state(proxy).await
        );
    }
    let urls = [&one, &two].map(|proxy| format!("{}/mde/api/alerts", proxy.url));
    let statuses = flat_out(&urls, 4).await;
    assert!(
        statuses.iter().all(|(status, _)| *status == 200),
        "{statuses:?}"
    );
    let sent = sim.control().api_requests();
    assert_eq!(sent, statuses.len() as u64);
    assert!(sent >= 10, "{sent}");
    std::fs::remove_dir_all(config.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn redis_killed_mid_run_leaves_every_request_answered_and_is_used_again_once_back() {
    let Some(mut redis) = RedisServer::start("killed") else {
        return;
    };
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let config = write_config(&sim, "killed", &redis.url(), 1000);
    let proxy = BinaryProxy::start(&config).await;
    assert!(
        until_state(&proxy, "connected").await,
        "{}",
        store_state(&proxy).await
    );

    let (killed_tx, killed) = tokio::sync::oneshot::channel::<()>();
    let url = proxy.url.clone();
    let requests = tokio::spawn(async move {
        let mut killed_tx = Some(killed_tx);
        let mut statuses = Vec::new();
        for i in 0..40 {
            if i == 10 {
                drop(killed_tx.take());
            }
            let response = tokio::time::timeout(
                Duration::from_secs(5),
                client().get(format!("{url}/mde/api/alerts")).send(),
            )
            .await
            .expect("every request is answered");
            statuses.push(response.unwrap().status().as_u16());
        }
        statuses
    });
    let _ = killed.await;
    redis.kill();
    let statuses = requests.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(until_state(&proxy, "unreachable").await);
    assert_eq!(
        get(&proxy, "/-/ready").await,
        200,
        "the store is not a dependency"
    );
    let metrics = client()
        .get(format!("{}/-/metrics", proxy.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("defender_token_proxy_rate_limit_store_fallbacks_total 1\n"),
        "{metrics}"
    );

    // Back on the same port: the proxy reconnects in the background.
    let port = redis.port;
    let dir = redis.dir.clone();
    let _back = RedisServer::on(port, &dir).expect("redis-server restarts on its port");
    assert!(
        until_state(&proxy, "connected").await,
        "{}",
        store_state(&proxy).await
    );
    assert_eq!(get(&proxy, "/mde/api/alerts").await, 200);
    let logs = proxy.logs.lock().unwrap().clone();
    assert_eq!(
        logs.matches("rate limit store unreachable").count(),
        1,
        "the fall-back is logged once"
    );
    std::fs::remove_dir_all(config.parent().unwrap()).unwrap();
}
