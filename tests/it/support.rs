//! Test support: start the simulator and the real proxy on port 0, build configs that point one at
//! the other, and poll for conditions with a deadline instead of sleeping.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use defender_sim::{Sim, SimControl, SimOptions};
use defender_token_proxy::config::{Config, ConfigSource, Overrides};
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
    /// The admin listener (health, readiness, metrics, status).
    pub(crate) admin_url: String,
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
        Self::run(sim, config).await
    }

    /// The proxy with the configuration `source` reads (reloadable), in front of `sim`.
    pub(crate) async fn start_from(sim: Sim, source: ConfigSource) -> Self {
        let config = source.load().unwrap_or_else(|e| panic!("{e}"));
        Self::run(sim, config).await
    }

    async fn run(sim: Sim, config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let admin_url = format!("http://{}", admin.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(defender_token_proxy::run_with_admin(
            listener,
            Some(admin),
            config,
            async {
                drop(stopped.await);
            },
        ));
        Self {
            url,
            admin_url,
            sim,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts `GET {path}` (a slow one, such as `/mde/_sim/slow?ms=1500`) and returns once the
    /// upstream has received it, so the caller acts while it is in flight.
    pub(crate) async fn in_flight(
        &self,
        path: &str,
    ) -> JoinHandle<reqwest::Result<reqwest::Response>> {
        let before = self.control().api_requests();
        let request = tokio::spawn(client().get(format!("{}{path}", self.url)).send());
        let control = self.control();
        let arrived = eventually(Duration::from_secs(5), || async {
            control.api_requests() > before
        })
        .await;
        assert!(arrived, "{path} did not reach the upstream");
        request
    }

    /// `GET {admin}{path}`.
    pub(crate) async fn admin(&self, path: &str) -> reqwest::Response {
        client()
            .get(format!("{}{path}", self.admin_url))
            .send()
            .await
            .unwrap()
    }

    /// The value of the metric sample `name{labels}` (labels exactly as exposed), if present.
    pub(crate) async fn metric(&self, sample: &str) -> Option<f64> {
        let text = self.admin("/-/metrics").await.text().await.unwrap();
        text.lines().find_map(|line| {
            line.strip_prefix(sample)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// Starts the shutdown (as SIGTERM would) without waiting for the drain.
    pub(crate) fn begin_stop(&mut self) -> JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("the proxy runs")
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
{routes}"#,
        authority = sim.authority(),
        routes = sim.routes_toml("app"),
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

/// The body of a raw HTTP/1.1 response, decoded if it is chunked.
pub(crate) fn raw_body(response: &str) -> String {
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return String::new();
    };
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_owned();
    }
    let (mut decoded, mut rest) = (String::new(), body);
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        decoded.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    decoded
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

/// The real binary, serving a config file, with its JSON logs collected.
pub(crate) struct BinaryProxy {
    pub(crate) child: tokio::process::Child,
    pub(crate) url: String,
    pub(crate) logs: Arc<std::sync::Mutex<String>>,
    reader: JoinHandle<()>,
}

impl BinaryProxy {
    /// Runs `defender-token-proxy serve --config <config>` at TRACE level with `SECRET` in its
    /// environment, and waits until it listens.
    pub(crate) async fn start(config: &Path) -> Self {
        Self::start_with_env(config, &[]).await
    }

    /// [`BinaryProxy::start`] with `env` added to its environment.
    pub(crate) async fn start_with_env(config: &Path, env: &[(&str, &Path)]) -> Self {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_defender-token-proxy"))
            .args(["serve", "--log-format", "json", "--config"])
            .arg(config)
            .env("RUST_LOG", "trace")
            .env("SECRET", SECRET)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let logs = Arc::new(std::sync::Mutex::new(String::new()));
        let (listening, address) = oneshot::channel();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let collected = logs.clone();
        let reader = tokio::spawn(async move {
            let mut listening = Some(listening);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(listen) = event["listen"].as_str()
                    && let Some(tx) = listening.take()
                {
                    let _ = tx.send(listen.to_owned());
                }
                let mut logs = collected.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let address = tokio::time::timeout(Duration::from_secs(10), address)
            .await
            .expect("the proxy starts listening")
            .unwrap();
        Self {
            child,
            url: format!("http://{address}"),
            logs,
            reader,
        }
    }

    /// Sends `signal` (such as "TERM" or "HUP") to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits for the process to exit (at most 10 s) and returns its status and its logs.
    pub(crate) async fn exit(mut self) -> (std::process::ExitStatus, String) {
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the proxy exits")
            .unwrap();
        self.reader.await.unwrap();
        let logs = self.logs.lock().unwrap().clone();
        (status, logs)
    }
}
