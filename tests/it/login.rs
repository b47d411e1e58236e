//! The user context: `login` by device code or in the browser, the stored sign-in (private,
//! rotated, surviving restarts), the proxy's 401 when nobody is signed in, and `logout`, run as
//! the real binary.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use defender_sim::{Sim, SimClient, SimOptions, SimTenant};
use defender_token_proxy::config::{Config, ConfigSource, Env, Overrides};
use defender_token_proxy::credential::ClientAuth;
use defender_token_proxy::login::{self, LoginError};
use defender_token_proxy::token::EntraClient;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{BinaryProxy, CLIENT_ID, SECRET, TestProxy, client};

const PUBLIC: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
pub(crate) const ANALYST: &str = "analyst@contoso.onmicrosoft.com";
const MDE_SCOPE: &str = "https://api.securitycenter.microsoft.com/.default";

/// A simulator with a public client, the default app and a customer tenant; device codes may be
/// polled at once.
pub(crate) async fn sim() -> Sim {
    Sim::start(SimOptions {
        clients: vec![
            SimClient::public(PUBLIC),
            SimClient::secret(CLIENT_ID, SECRET),
        ],
        customer_tenants: vec![SimTenant {
            id: "0c6e2d47-35a1-4f0e-9b8c-7d2a51e6f3b9".into(),
            domain: "fabrikam.onmicrosoft.com".into(),
        }],
        device_code_interval: Duration::ZERO,
        ..SimOptions::default()
    })
    .await
    .unwrap()
}

/// A scratch directory with a config file: credential `user` (device_code, state in `state/`) on
/// /mde, `app` (client secret) on /graph, and `partner` (the home tenant and Fabrikam) on
/// /customers/{tenant}/xdr.
pub(crate) fn workspace(sim: &Sim) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("dtp-login-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"

[state]
dir = "state"

[cloud]
authority_host = "{authority}"

[credentials.user]
type = "device_code"
tenant = "contoso.onmicrosoft.com"
client_id = "{PUBLIC}"

[credentials.app]
type = "client_secret"
tenant = "contoso.onmicrosoft.com"
client_id = "{CLIENT_ID}"
client_secret = {{ env = "SECRET" }}

[credentials.partner]
type = "client_secret"
tenants = ["contoso.onmicrosoft.com", "fabrikam.onmicrosoft.com"]
client_id = "{CLIENT_ID}"
client_secret = {{ env = "SECRET" }}

[[routes]]
prefix = "/mde"
api = "mde"
credential = "user"
upstream = "{mde}"

[[routes]]
prefix = "/graph"
api = "graph"
credential = "app"
upstream = "{graph}"

[[routes]]
prefix = "/customers/{{tenant}}/xdr"
api = "xdr"
credential = "partner"
upstream = "{xdr}"
"#,
            authority = sim.authority(),
            mde = sim.mde(),
            graph = sim.graph(),
            xdr = sim.xdr(),
        ),
    )
    .unwrap();
    (dir.clone(), config)
}

fn env() -> Env {
    Arc::new(|name: &str| (name == "SECRET").then(|| SECRET.to_owned()))
}

fn load(config: &Path) -> Config {
    ConfigSource::file(config, Overrides::default(), env())
        .load()
        .unwrap()
}

/// Signs `user` in in-process with the device code flow, approving as the analyst.
pub(crate) async fn sign_in(sim: &Sim, config: &Path) -> Result<login::SignedIn, LoginError> {
    let config = load(config);
    let credential = config.credentials["user"].clone();
    let ClientAuth::User(file) = &credential.auth else {
        panic!("a device_code credential");
    };
    let control = sim.control();
    let approve = tokio::spawn(async move {
        let code = control
            .wait_for_device_code(Duration::from_secs(5))
            .await
            .expect("a device code is issued");
        assert!(control.approve_device_code(&code, ANALYST));
    });
    let entra = EntraClient::new(Duration::from_secs(10)).unwrap();
    let mut out = Vec::new();
    let outcome = login::device_code(&entra, &credential, file, MDE_SCOPE, &mut out).await;
    approve.await.unwrap();
    outcome
}

pub(crate) fn binary() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_defender-token-proxy"));
    command
        .env("SECRET", SECRET)
        .env("RUST_LOG", "trace")
        .kill_on_drop(true);
    command
}

/// Starts `login user --browser --no-open` with `config`, and reads its standard output up to the
/// sign-in page's URL: the process, the rest of its output, and the URL.
pub(crate) async fn browser_login(
    config: &std::path::Path,
) -> (
    tokio::process::Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    String,
) {
    let mut login = binary()
        .arg("--config")
        .arg(config)
        .args(["login", "user", "--browser", "--no-open"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(login.stdout.take().unwrap()).lines();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(10), stdout.next_line())
            .await
            .expect("login prints the sign-in page")
            .unwrap()
            .expect("login prints the sign-in page before it ends");
        if line.starts_with("http") {
            break line;
        }
    };
    (login, stdout, url)
}

/// Runs the binary with `args` to completion; returns its exit code, stdout and stderr.
pub(crate) async fn run(config: &Path, args: &[&str]) -> (i32, String, String) {
    let output = binary()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) fn state_file(dir: &Path) -> PathBuf {
    dir.join("state/user.json")
}

fn stored_refresh_token(dir: &Path) -> String {
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_file(dir)).unwrap()).unwrap();
    stored["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn login_by_device_code_stores_a_private_sign_in_that_survives_a_restart() {
    let sim = sim().await;
    let (dir, config) = workspace(&sim);
    let mut login = binary()
        .arg("--config")
        .arg(&config)
        .args(["login", "user"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(login.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let user_code = loop {
        let line = tokio::time::timeout(Duration::from_secs(10), stdout.next_line())
            .await
            .expect("login prints the code")
            .unwrap()
            .expect("login prints the code before it ends");
        printed.push_str(&line);
        printed.push('\n');
        if let Some(code) = line.strip_prefix("user_code: ") {
            break code.to_owned();
        }
    };
    assert!(printed.contains("verification_uri: "), "{printed}");
    // It says that it waits, for what, and for how long.
    let waiting = tokio::time::timeout(Duration::from_secs(10), stdout.next_line())
        .await
        .expect("login says it waits")
        .unwrap()
        .unwrap();
    assert!(
        waiting.starts_with(&format!(
            "waiting for the sign-in: enter {user_code} at http"
        )),
        "{waiting}"
    );
    assert!(waiting.ends_with(" left)"), "{waiting}");
    assert!(sim.control().approve_device_code(&user_code, ANALYST));
    while let Some(line) = stdout.next_line().await.unwrap() {
        printed.push_str(&line);
        printed.push('\n');
    }
    let output = login.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{printed}\n{stderr}");
    assert!(printed.contains("sign-in approved"), "{printed}");
    assert!(
        printed.contains(&format!("signed in as {ANALYST}")),
        "{printed}"
    );

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state_file(&dir))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let refresh_token = stored_refresh_token(&dir);
    assert!(!printed.contains(&refresh_token) && !stderr.contains(&refresh_token));

    // The proxy, restarted: each run reads the newest refresh token; no new login is needed,
    // and no rotated-out refresh token is ever presented.
    let control = sim.control();
    for run in 0..2 {
        let proxy = BinaryProxy::start(&config).await;
        let whoami: serde_json::Value = client()
            .get(format!("{}/mde/_sim/whoami", proxy.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(whoami["upn"], ANALYST, "run {run}: {whoami}");
        assert_eq!(whoami["idtyp"], "user");
        proxy.signal("TERM");
        let (status, logs) = proxy.exit().await;
        assert!(status.success());
        let rotated = stored_refresh_token(&dir);
        assert_ne!(
            rotated, refresh_token,
            "the rotated refresh token is stored"
        );
        assert!(!logs.contains(&rotated) && !logs.contains(&refresh_token));
    }
    assert_eq!(
        control.grant_requests("urn:ietf:params:oauth:grant-type:device_code"),
        1
    );
    assert!(control.grant_requests("refresh_token") >= 2);
    assert_eq!(control.refresh_token_reuses(), 0);
}

#[tokio::test]
async fn without_a_sign_in_requests_get_401_at_once_and_a_new_login_takes_effect() {
    let sim = sim().await;
    let (dir, config) = workspace(&sim);
    let control = sim.control();
    let proxy = TestProxy::start_from(
        sim,
        ConfigSource::file(&config, Overrides::default(), env()),
    )
    .await;
    let started = Instant::now();
    let refused = proxy.get("/mde/api/alerts").await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["x-token-proxy-error"], "login_required");
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert!(
        problem["hint"]
            .as_str()
            .unwrap()
            .contains("defender-token-proxy login user"),
        "{problem}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(control.grant_requests("refresh_token"), 0);
    // The application routes are unaffected.
    assert_eq!(proxy.get("/graph/_sim/whoami").await.status(), 200);

    sign_in(&proxy.sim, &config).await.unwrap();
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);

    // Revoked (say, a password reset): Entra refuses the refresh token; the proxy says so once
    // and does not present that token again.
    control.revoke_refresh_tokens();
    control.revoke_all_tokens();
    let refused = proxy.get("/mde/api/alerts").await;
    assert_eq!(refused.status(), 401);
    let refusals = control.grant_requests("refresh_token");
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 401);
    assert_eq!(control.grant_requests("refresh_token"), refusals);
    sign_in(&proxy.sim, &config).await.unwrap();
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);

    let (code, stdout, _) = run(&config, &["logout", "user"]).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("signed out"), "{stdout}");
    assert!(!state_file(&dir).exists());
}

#[tokio::test]
async fn device_code_polling_slows_down_and_stops_when_declined_or_expired() {
    let sim = sim().await;
    let (_dir, config) = workspace(&sim);
    let control = sim.control();
    control.set_slow_down(1);
    let started = Instant::now();
    sign_in(&sim, &config).await.unwrap();
    // RFC 8628: after slow_down, 5 s more between polls.
    assert!(started.elapsed() >= Duration::from_secs(5));

    let config_value = load(&config);
    let credential = config_value.credentials["user"].clone();
    let ClientAuth::User(file) = &credential.auth else {
        panic!("a device_code credential");
    };
    let entra = EntraClient::new(Duration::from_secs(10)).unwrap();
    for (decline, expected) in [(true, "declined"), (false, "expired")] {
        let control = sim.control();
        let refuse = tokio::spawn(async move {
            let code = control
                .wait_for_device_code(Duration::from_secs(5))
                .await
                .unwrap();
            if decline {
                assert!(control.decline_device_code(&code));
            } else {
                control.expire_device_codes();
            }
        });
        let outcome =
            login::device_code(&entra, &credential, file, MDE_SCOPE, &mut Vec::new()).await;
        refuse.await.unwrap();
        let error = outcome.unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }
}

#[tokio::test]
async fn login_in_the_browser_uses_pkce_and_a_loopback_redirect() {
    let sim = sim().await;
    let (dir, config) = workspace(&sim);
    let (login, mut stdout, url) = browser_login(&config).await;
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let waiting = stdout.next_line().await.unwrap().unwrap();
    assert!(
        waiting.starts_with("waiting for the browser to come back to http://localhost:"),
        "{waiting}"
    );
    // The browser: the sign-in page redirects to the loopback listener with the code.
    let browser = reqwest::Client::new();
    let landed = browser.get(&url).send().await.unwrap();
    assert_eq!(landed.status(), 200);
    let output = tokio::time::timeout(Duration::from_secs(10), login.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(state_file(&dir).exists());
    assert_eq!(sim.control().grant_requests("authorization_code"), 1);
}
