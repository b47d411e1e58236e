//! A new user's first minutes, run as the real binary: `localhost` listens on both loopbacks;
//! `check --offline` and `check --format json`; shell completions and `--version`.

use std::process::Stdio;

use clap::Parser;
use defender_token_proxy::cli::{Cli, Command};
use defender_token_proxy::config::Listen;

use crate::login::{ANALYST, run, sign_in, sim, workspace};
use crate::support::{BinaryProxy, client};

const BINARY: &str = env!("CARGO_BIN_EXE_defender-token-proxy");

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
