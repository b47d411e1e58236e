//! A new user's first minutes, run as the real binary: nothing configured outside Azure fails at
//! once and says what to set; `localhost` listens on both loopbacks; `check --offline` and
//! `check --format json`; shell completions and `--version`. Nothing here reaches beyond loopback:
//! the metadata service is always a local stand-in (AZURE_POD_IDENTITY_AUTHORITY_HOST).

use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Parser;
use defender_sim::{Sim, SimOptions};
use defender_token_proxy::cli::{Cli, Command};
use defender_token_proxy::config::Listen;
use tokio::net::TcpListener;

use crate::login::{ANALYST, run, sign_in, sim, workspace};
use crate::support::{BinaryProxy, TestProxy, client};

const BINARY: &str = env!("CARGO_BIN_EXE_defender-token-proxy");

/// Runs the binary with nothing but `vars` in its environment; returns its exit code, stderr and
/// how long it took.
async fn bare(args: &[&str], vars: &[(&str, &str)]) -> (i32, String, Duration) {
    let started = Instant::now();
    let output = tokio::process::Command::new(BINARY)
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .expect("the command ends")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (
        output.status.code().unwrap_or(-1),
        stderr,
        started.elapsed(),
    )
}

#[tokio::test]
async fn with_nothing_configured_outside_azure_check_and_serve_fail_at_once_saying_what_to_set() {
    // A closed port (nothing listens), and a listener that accepts but never answers.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_host = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_host = format!("http://{}", silent.local_addr().unwrap());
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            open.push(tcp);
        }
    });
    for (host, why) in [
        (&closed_host, "unreachable"),
        (&silent_host, "did not answer"),
    ] {
        for command in ["check", "serve"] {
            let vars = [("AZURE_POD_IDENTITY_AUTHORITY_HOST", host.as_str())];
            let (code, stderr, took) = bare(&[command], &vars).await;
            assert_ne!(code, 0, "{command}: {stderr}");
            assert!(took < Duration::from_secs(5), "{command} took {took:?}");
            for name in [
                "AZURE_TENANT_ID",
                "AZURE_CLIENT_ID",
                "AZURE_CLIENT_SECRET",
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "AZURE_FEDERATED_TOKEN_FILE",
                "--config",
            ] {
                assert!(stderr.contains(name), "{command}: {name}: {stderr}");
            }
            assert!(stderr.contains("metadata service"), "{stderr}");
            assert!(stderr.contains(why), "{command}: {stderr}");
            assert!(!stderr.to_lowercase().contains("entra"), "{stderr}");
        }
    }
}

#[tokio::test]
async fn a_metadata_service_stand_in_serves_the_environment_mode_and_failures_name_it() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let vars = [("AZURE_POD_IDENTITY_AUTHORITY_HOST", sim.identity())];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, stderr, _) = bare(&["check"], &vars).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(sim.control().identity_requests() >= 1);

    // A configured managed identity whose endpoint is down: the problem names the endpoint.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!(
        "http://{}/metadata/identity/oauth2/token",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let proxy = TestProxy::start_on(sim, |sim| {
        format!(
            "[credentials.mi]\ntype = \"managed_identity\"\nendpoint = \"{endpoint}\"\n\n\
             [[routes]]\nprefix = \"/mde\"\napi = \"mde\"\ncredential = \"mi\"\nupstream = \"{}\"\n",
            sim.mde()
        )
    })
    .await;
    let response = proxy.get("/mde/api/alerts").await;
    assert!(
        [502, 503].contains(&response.status().as_u16()),
        "{}",
        response.status()
    );
    let body: serde_json::Value = response.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("metadata service"), "{body}");
    assert!(detail.contains(&endpoint), "{body}");
    assert!(!detail.to_lowercase().contains("entra"), "{body}");
}

#[tokio::test]
async fn localhost_listens_on_both_loopback_addresses_and_both_hosts_are_accepted() {
    let parsed = Cli::try_parse_from([
        "defender-token-proxy",
        "serve",
        "--listen",
        "localhost:8080",
    ]);
    let Command::Serve { listen } = parsed.unwrap().command else {
        panic!("serve");
    };
    assert_eq!(listen, Some(Listen::Localhost(8080)));

    let sim = sim().await;
    let (dir, config) = workspace(&sim);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("127.0.0.1:0", "localhost:0")).unwrap();
    let proxy = BinaryProxy::start(&config).await;
    let port = proxy.url.rsplit(':').next().unwrap().to_owned();
    let v6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let mut urls = vec![format!("http://127.0.0.1:{port}")];
    if v6 {
        urls.push(format!("http://[::1]:{port}"));
    }
    for url in &urls {
        let response = client()
            .get(format!("{url}/graph/_sim/whoami"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let named = client()
            .get(format!("{url}/-/healthy"))
            .header("host", format!("localhost:{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(named.status(), 200, "{url} as localhost");
    }
    proxy.signal("TERM");
    let (status, _) = proxy.exit().await;
    assert!(status.success());
    drop(dir);
}

#[tokio::test]
async fn check_offline_requests_nothing_and_check_json_reports_each_token_without_it() {
    let sim = sim().await;
    let (dir, config) = workspace(&sim);
    let (code, stdout, stderr) = run(&config, &["check", "--offline"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("--offline"), "{stdout}");
    assert!(stdout.contains("not requested"), "{stdout}");
    assert_eq!(sim.control().token_requests(), 0);
    let (code, stdout, _) = run(&config, &["check", "--offline", "--format", "json"]).await;
    assert_eq!(code, 0);
    let offline: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(offline["offline"], true);
    assert!(
        offline["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "not_requested"),
        "{offline}"
    );
    assert_eq!(sim.control().token_requests(), 0);

    // A file the config names is missing: refused offline too, naming the key.
    let broken = dir.join("broken.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "client_secret = { env = \"SECRET\" }\n\n[credentials.partner]",
        "client_secret = { file = \"missing-secret\" }\n\n[credentials.partner]",
    );
    std::fs::write(&broken, text).unwrap();
    let (code, _, stderr) = run(&broken, &["check", "--offline"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("credentials.app.client_secret"), "{stderr}");

    sign_in(&sim, &config).await.unwrap();
    let (code, stdout, stderr) = run(&config, &["check", "--format", "json"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(!stdout.contains("eyJ"), "no token is printed");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true);
    let tokens = report["tokens"].as_array().unwrap();
    let find = |credential: &str, tenant: &str| {
        tokens
            .iter()
            .find(|t| t["credential"] == credential && t["tenant"] == tenant)
            .unwrap_or_else(|| panic!("{credential} {tenant}: {report}"))
    };
    let app = find("app", "contoso.onmicrosoft.com");
    assert_eq!(app["state"], "valid");
    assert_eq!(app["audience"], "https://graph.microsoft.com");
    assert!(app["roles"].as_array().is_some(), "{app}");
    assert!(app["expires_in_s"].as_u64() > Some(60), "{app}");
    assert!(app["expires_at"].as_str().unwrap().ends_with('Z'), "{app}");
    let user = find("user", "contoso.onmicrosoft.com");
    assert_eq!(user["account"], ANALYST);
    assert!(user["scopes"].as_array().is_some(), "{user}");
    assert_eq!(
        find("partner", "fabrikam.onmicrosoft.com")["state"],
        "valid"
    );

    sim.control()
        .refuse_tenant("fabrikam.onmicrosoft.com", Some(65001));
    let (code, stdout, _) = run(&config, &["check", "--format", "json"]).await;
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);
    let failing = report["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["state"] == "failing")
        .cloned()
        .unwrap();
    assert_eq!(failing["tenant"], "fabrikam.onmicrosoft.com");
    assert_eq!(failing["aadsts"], serde_json::json!([65001]));
    assert!(
        failing["hint"].as_str().unwrap().contains("consent"),
        "{failing}"
    );
}

#[tokio::test]
async fn completions_for_each_shell_and_the_version_names_the_commit() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef defender-token-proxy"),
        ("fish", "complete -c defender-token-proxy"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let output = tokio::process::Command::new(BINARY)
            .args(["completions", shell])
            .stderr(Stdio::null())
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("consent-url"),
            "{shell}: the subcommands are there"
        );
    }

    let output = tokio::process::Command::new(BINARY)
        .arg("--version")
        .output()
        .await
        .unwrap();
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let commit = version
        .strip_prefix(concat!(
            "defender-token-proxy ",
            env!("CARGO_PKG_VERSION"),
            " ("
        ))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{version}"));
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    assert_eq!(commit, head.as_deref().unwrap_or("unknown"), "{version}");
}
