//! Test support: start the simulator and the real proxy on port 0, build configs that point one at
//! the other, and poll for conditions with a deadline instead of sleeping.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use defender_token_proxy::config::{Config, Overrides};
use defender_token_proxy::sim::{Sim, SimControl, SimOptions};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The client secret the simulator's default client has.
pub(crate) const SECRET: &str = "demo-secret";
/// The simulator's default client id.
pub(crate) const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";

/// A running proxy and the simulator behind it.
pub(crate) struct TestProxy {
    pub(crate) url: String,
    pub(crate) sim: Sim,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestProxy {
    /// The simulator with `options`, and the proxy with the standard routes (/mde, /xdr, /graph,
    /// /mdca, all with the client secret credential `app`) plus `extra` TOML.
    pub(crate) async fn start(options: SimOptions) -> Self {
        Self::start_with(options, |sim| standard_config(sim, "")).await
    }

    /// The simulator with `options`, and the proxy with only the /mde route, so that token counts
    /// are not mixed with the warm-up of other routes' tokens.
    pub(crate) async fn start_mde(options: SimOptions) -> Self {
        Self::start_with(options, |sim| mde_config(sim, "")).await
    }

    /// The simulator with `options`, and the proxy with the config `make_config` writes for it.
    /// The secret is available to the config as `{ env = "SECRET" }`.
    pub(crate) async fn start_with(
        options: SimOptions,
        make_config: impl FnOnce(&Sim) -> String,
    ) -> Self {
        let sim = Sim::start(options).await.expect("the simulator starts");
        Self::start_on(sim, make_config).await
    }

    /// The proxy in front of an already running simulator (set faults on it first to have them
    /// from the proxy's first token request on).
    pub(crate) async fn start_on(sim: Sim, make_config: impl FnOnce(&Sim) -> String) -> Self {
        let text = make_config(&sim);
        let config = parse(&text, SECRET);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(defender_token_proxy::run(listener, config, async {
            drop(stopped.await);
        }));
        Self {
            url,
            sim,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub(crate) fn control(&self) -> Arc<SimControl> {
        self.sim.control()
    }

    /// `GET {proxy}{path}`.
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        client()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
    }

    /// Asks the proxy to stop and waits for it.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Parses config text with `SECRET` set to `secret` in its environment.
pub(crate) fn parse(text: &str, secret: &str) -> Config {
    let secret = secret.to_owned();
    let env = move |name: &str| (name == "SECRET").then(|| secret.clone());
    Config::from_toml(
        text,
        "test.toml",
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &Overrides::default(),
        &env,
    )
    .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The standard test config: credential `app` (client secret `secret` via the SECRET variable) and
/// one route per simulated API; `server_extra` is appended to `[server]`.
pub(crate) fn standard_config(sim: &Sim, server_extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server_extra}

[cloud]
authority_host = "{authority}"

[credentials.app]
type = "client_secret"
tenant = "contoso.onmicrosoft.com"
client_id = "{CLIENT_ID}"
client_secret = {{ env = "SECRET" }}

[[routes]]
prefix = "/mde"
api = "mde"
credential = "app"
upstream = "{mde}"

[[routes]]
prefix = "/xdr"
api = "xdr"
credential = "app"
upstream = "{xdr}"

[[routes]]
prefix = "/graph"
api = "graph"
credential = "app"
upstream = "{graph}"

[[routes]]
prefix = "/mdca"
api = "mdca"
credential = "app"
upstream = "{mdca}"
"#,
        authority = sim.authority(),
        mde = sim.mde(),
        xdr = sim.xdr(),
        graph = sim.graph(),
        mdca = sim.mdca(),
    )
}

/// The standard test config with only its /mde route.
pub(crate) fn mde_config(sim: &Sim, server_extra: &str) -> String {
    let full = standard_config(sim, server_extra);
    let end = full
        .find("\n[[routes]]\nprefix = \"/xdr\"")
        .expect("the /xdr route follows /mde");
    full[..end].to_owned()
}

/// A plain HTTP client, as a tool would use; it does not follow redirects.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Polls `condition` every 10 ms until it holds or `deadline` passes; returns whether it held.
pub(crate) async fn eventually<F, Fut>(deadline: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The resident set size of this process, in bytes.
pub(crate) fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Sends `request` (raw HTTP/1.1 bytes; use `Connection: close`) to `url`'s host and returns the
/// raw response: for requests a client library would rewrite.
pub(crate) async fn raw_request(url: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// The body of a raw HTTP/1.1 response (no chunked decoding: the simulator's echo sends a length).
pub(crate) fn raw_body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// The values of header `name` in a `/_sim/echo` answer.
pub(crate) fn echoed(echo: &serde_json::Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap().to_owned())
        .collect()
}
