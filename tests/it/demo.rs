//! The demo as a new user meets it: the real binary's `demo` command prints curl commands, and
//! every one of them returns data through the proxy (and the one that bypasses it is refused).

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::client;

/// One printed curl command.
#[derive(Debug)]
struct Curl {
    method: reqwest::Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

/// Parses `curl -s [-X M] 'URL' [-H 'N: V'] [-d 'BODY']`, the only forms the demo prints.
fn parse_curl(line: &str) -> Curl {
    let quoted: Vec<&str> = line.split('\'').skip(1).step_by(2).collect();
    let flags: Vec<&str> = line.split('\'').step_by(2).collect();
    let mut curl = Curl {
        method: reqwest::Method::GET,
        url: quoted[0].to_owned(),
        headers: Vec::new(),
        body: None,
    };
    if flags[0].contains("-X POST") {
        curl.method = reqwest::Method::POST;
    }
    for (flag, value) in flags.iter().skip(1).zip(quoted.iter().skip(1)) {
        match flag.trim() {
            "-H" => {
                let (name, value) = value.split_once(": ").unwrap();
                curl.headers.push((name.to_owned(), value.to_owned()));
            }
            "-d" => curl.body = Some((*value).to_owned()),
            other => panic!("unexpected curl flag {other:?} in {line}"),
        }
    }
    curl
}

#[tokio::test]
async fn the_demo_prints_curl_commands_that_return_data() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_defender-token-proxy"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut through_proxy = Vec::new();
    let mut bypassing = Vec::new();
    let mut config = None;
    let read = async {
        let mut bypass_section = false;
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(path) = line
                .trim()
                .strip_prefix("defender-token-proxy check --config ")
            {
                config = Some(std::path::PathBuf::from(path));
            }
            if line.contains("without the proxy") {
                bypass_section = true;
            }
            if line.trim_start().starts_with("curl ") {
                let curl = parse_curl(line.trim());
                if bypass_section {
                    bypassing.push(curl)
                } else {
                    through_proxy.push(curl)
                }
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the demo prints its instructions");
    assert!(through_proxy.len() >= 6, "{through_proxy:?}");
    assert_eq!(bypassing.len(), 1);

    let http = client();
    for curl in &through_proxy {
        let mut request = http.request(curl.method.clone(), &curl.url);
        for (name, value) in &curl.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &curl.body {
            request = request.body(body.clone());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{curl:?}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body.as_object().is_some_and(|o| !o.is_empty()),
            "{curl:?}: {body}"
        );
    }
    let refused = http.get(&bypassing[0].url).send().await.unwrap();
    assert_eq!(refused.status(), 401);

    // The one-off commands it prints work against it.
    let config = config.expect("the demo prints the check command with its config");
    let one_off = |args: &'static [&'static str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_defender-token-proxy"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_clear()
            .output()
    };
    let check = one_off(&["check"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{stdout}");
    assert!(stdout.contains("ok    demo"), "{stdout}");
    let token = one_off(&["token", "demo", "--api", "graph"]).await.unwrap();
    assert!(token.status.success());
    assert_eq!(
        String::from_utf8_lossy(&token.stdout)
            .trim()
            .split('.')
            .count(),
        3
    );
    child.kill().await.unwrap();
    drop(std::fs::remove_dir_all(config.parent().unwrap()));
}
