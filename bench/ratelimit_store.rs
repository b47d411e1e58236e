//! The cost of one rate-limit admission, local and Redis-backed, p50 and p99:
//!
//!   cargo bench --bench ratelimit_store
//!
//! It starts Debian's `redis-server` on a free loopback port (or uses `REDIS_URL`), builds one
//! budget as the proxy does (from a config with `rate_limit_store`), and times `N` admissions
//! (default 20,000; `N=...`) one after another on a current-thread runtime: first with the local
//! budget, then through the store (one Lua script round trip each). The limits are high enough
//! that no admission waits, so what is measured is the admission itself.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use defender_token_proxy::config::{Config, Overrides};
use defender_token_proxy::ratelimit::budgets::{BudgetFamily, Budgets, Waiting};
use defender_token_proxy::ratelimit::store::{Store, StoreState};

fn config(store: &str) -> Config {
    let text = format!(
        r#"
[server]
rate_limit_store = "{store}"
rate_limit_prefix = "bench:"

[credentials.app]
type = "client_secret"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = "bench-secret"

[[routes]]
prefix = "/mde"
api = "mde"
credential = "app"
upstream = "http://127.0.0.1:9"
rate_limit = {{ per_minute = 1000000000 }}
"#
    );
    Config::from_toml(
        &text,
        "bench.toml",
        Path::new("."),
        &Overrides::default(),
        &|_| None,
    )
    .expect("the bench config is valid")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let (url, _server) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let dir = std::env::temp_dir().join(format!("dtp-bench-redis-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a scratch directory");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--dir"])
                .arg(&dir)
                .stdout(Stdio::null())
                .spawn()
                .expect(
                    "redis-server is installed (apt-get install redis-server), or set REDIS_URL",
                );
            (
                format!("redis://127.0.0.1:{port}/0"),
                Some(KillOnDrop(child)),
            )
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let config = config(&url);
        let limit = config.routes[0].rate_limit.clone().expect("a limit");
        let store = Store::start(
            config.server.rate_limit_store.expect("a store"),
            Box::new(|_| {}),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.state() != StoreState::Connected {
            assert!(Instant::now() < deadline, "the store did not connect");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let waiting = Waiting {
            max_wait: Duration::from_secs(30),
            max_queue: 256,
        };
        let family = BudgetFamily {
            name: limit.family.clone(),
            app: Some("11111111-2222-3333-4444-555555555555".into()),
        };
        let tenant: Arc<str> = "contoso.onmicrosoft.com".into();
        println!("| admission | n | p50 | p99 | mean |");
        println!("|---|---|---|---|---|");
        for (name, store) in [("local", None), ("redis", Some(Arc::clone(&store)))] {
            let budgets =
                Budgets::new([(limit.family.clone(), limit.limits)], waiting, store, None);
            let budget = budgets.get(&family, &tenant);
            let store = budgets.store().map(|s| &**s);
            for _ in 0..1000 {
                budget.acquire(store).await.expect("admitted");
            }
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                let started = Instant::now();
                budget.acquire(store).await.expect("admitted");
                times.push(started.elapsed());
            }
            let mean = times.iter().sum::<Duration>() / n as u32;
            times.sort();
            println!(
                "| {name} | {n} | {:.1} µs | {:.1} µs | {:.1} µs |",
                percentile(&times, 0.50).as_secs_f64() * 1e6,
                percentile(&times, 0.99).as_secs_f64() * 1e6,
                mean.as_secs_f64() * 1e6,
            );
        }
        assert_eq!(
            store.state(),
            StoreState::Connected,
            "the store fell back during the run"
        );
    });
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
