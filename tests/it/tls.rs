//! Inbound TLS: HTTPS with the configured certificate (links rewritten to https), mutual TLS that
//! refuses clients without a certificate from the configured CA, and a renewed certificate picked
//! up for new connections without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use defender_sim::{Sim, SimOptions};
use defender_token_proxy::config::{ConfigSource, Overrides};
use serde_json::Value;

use crate::support::{SECRET, TestProxy, eventually, mde_config};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn https_client(ca: &str, identity: Option<&str>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(fixture(ca)).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([ca])
        // A new connection (and handshake) per request, so a renewed certificate shows.
        .pool_max_idle_per_host(0);
    if let Some(identity) = identity {
        builder = builder.identity(
            reqwest::Identity::from_pem(&std::fs::read(fixture(identity)).unwrap()).unwrap(),
        );
    }
    builder.build().unwrap()
}

fn tls_section(cert: &Path, key: &Path, client_ca: Option<&Path>) -> String {
    let mut section = format!(
        "\n[server.tls]\ncert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    if let Some(ca) = client_ca {
        section.push_str(&format!("client_ca = {:?}\n", ca.display().to_string()));
    }
    section
}

#[tokio::test]
async fn the_proxy_serves_https_and_rewrites_links_to_https() {
    let tls = tls_section(&fixture("tls-server.pem"), &fixture("tls-server.key"), None);
    let proxy = TestProxy::start_with(SimOptions::default(), move |sim| {
        format!("{}{tls}", mde_config(sim, ""))
    })
    .await;
    let url = proxy
        .url
        .replace("http://", "https://")
        .replace("127.0.0.1", "localhost");
    let page: Value = https_client("tls-ca.pem", None)
        .get(format!("{url}/mde/api/alerts?$top=5"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        page["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{url}/mde/")),
        "{page}"
    );
    assert!(
        reqwest::get(format!("{}/mde/api/alerts", proxy.url))
            .await
            .is_err(),
        "plain HTTP is not served"
    );
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_from_the_ca() {
    let tls = tls_section(
        &fixture("tls-server.pem"),
        &fixture("tls-server.key"),
        Some(&fixture("tls-ca.pem")),
    );
    let proxy = TestProxy::start_with(SimOptions::default(), move |sim| {
        format!("{}{tls}", mde_config(sim, ""))
    })
    .await;
    let url = format!(
        "{}/mde/api/alerts",
        proxy
            .url
            .replace("http://", "https://")
            .replace("127.0.0.1", "localhost")
    );
    assert!(
        https_client("tls-ca.pem", None)
            .get(&url)
            .send()
            .await
            .is_err(),
        "no client certificate"
    );
    let response = https_client("tls-ca.pem", Some("tls-client.pem"))
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(proxy.control().api_requests(), 1);
}

#[tokio::test]
async fn a_renewed_certificate_is_used_for_new_connections_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("dtp-tls-renew-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let install = |cert: &str, key: &str| {
        for (from, to) in [(cert, "server.pem"), (key, "server.key")] {
            let temp = dir.join(format!(".{to}.tmp"));
            std::fs::copy(fixture(from), &temp).unwrap();
            std::fs::rename(&temp, dir.join(to)).unwrap();
        }
    };
    install("tls-server.pem", "tls-server.key");
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let text = format!(
        "{}{}",
        mde_config(&sim, "watch_interval = \"50ms\""),
        tls_section(Path::new("server.pem"), Path::new("server.key"), None)
    );
    std::fs::write(dir.join("proxy.toml"), text).unwrap();
    let env = Arc::new(|name: &str| (name == "SECRET").then(|| SECRET.to_owned()));
    let proxy = TestProxy::start_from(
        sim,
        ConfigSource::file(dir.join("proxy.toml"), Overrides::default(), env),
    )
    .await;
    let url = format!(
        "{}/mde/api/alerts",
        proxy
            .url
            .replace("http://", "https://")
            .replace("127.0.0.1", "localhost")
    );
    let (first_ca, renewed_ca) = (
        https_client("tls-ca.pem", None),
        https_client("tls-ca2.pem", None),
    );
    assert_eq!(first_ca.get(&url).send().await.unwrap().status(), 200);
    assert!(renewed_ca.get(&url).send().await.is_err());

    install("tls-server2.pem", "tls-server2.key");
    let renewed = eventually(Duration::from_secs(10), || async {
        renewed_ca.get(&url).send().await.is_ok()
    })
    .await;
    assert!(renewed, "the renewed certificate was not picked up");
    assert!(first_ca.get(&url).send().await.is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
