//! Real client libraries, unchanged but for the proxy's URL (or, for SDKs that fetch their own
//! token, the managed-identity variables), through the real proxy in front of the simulator: the
//! scripts in tests/clients with the versions tests/clients/requirements.txt pins. Python comes
//! from `DTP_CLIENTS_PYTHON` (a venv .ci/run makes); without it these tests skip, saying so,
//! except under CI, where they fail.

use std::collections::HashSet;
use std::time::Duration;

use defender_sim::SimOptions;
use serde_json::Value;

use crate::support::{TestProxy, client, standard_config};

/// The identity header the managed-identity clients are given.
const HEADER: &str = "identity-header-for-the-clients";
/// The resource of the /mde route.
const MDE: &str = "https://api.securitycenter.microsoft.com";
/// How long one client script may take (a cold Python start with the Graph SDK takes seconds).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The interpreter a client runs with, or `None` (the test then skips) when it is not configured
/// outside CI.
fn interpreter(variable: &str, default: Option<&str>) -> Option<String> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(path.to_string_lossy().into_owned());
    }
    if let Some(default) = default {
        return Some(default.to_owned());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {variable} is not: the client suite never skips in CI (.ci/run sets it)"
    );
    eprintln!(
        "skipped: {variable} is not set (.ci/run sets it to a venv with tests/clients/requirements.txt)"
    );
    None
}

async fn proxy() -> TestProxy {
    TestProxy::start_with(SimOptions::default(), |sim| {
        standard_config(sim, "")
            + &format!("\n[identity_endpoint]\nsecret = \"{HEADER}\"\ncredential = \"app\"\n")
    })
    .await
}

/// Runs `script` (in tests/clients) with `program`, `args` and only `env` besides PATH and a
/// scratch HOME, and returns the JSON its last line prints. Python scripts run with
/// tests/clients/loopback_only on their path, which ends them if they reach past loopback.
async fn run(program: &str, script: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
    let home = std::env::temp_dir().join(format!("dtp-clients-{}-{script}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let command = tokio::process::Command::new(program)
        .arg(format!("{dir}/{script}"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("PYTHONPATH", format!("{dir}/loopback_only"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, command)
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{program} {script}: {e}"));
    std::fs::remove_dir_all(&home).unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "{script}: {}\n{stdout}\n{stderr}",
        output.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{script}: {e}: {stdout}\n{stderr}"))
}

/// Every id once, `count` of them; every next link the client followed went to the proxy's
/// `prefix`.
fn assert_paged(result: &Value, count: usize, pages: usize, proxy: &TestProxy, prefix: &str) {
    let ids: Vec<String> = result["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.to_string())
        .collect();
    assert_eq!(ids.len(), count, "{result}");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), count, "{result}");
    let links = result["links"].as_array().unwrap();
    assert_eq!(links.len(), pages - 1, "{result}");
    for link in links {
        let link = link.as_str().unwrap();
        assert!(
            link.starts_with(&format!("{}{prefix}/", proxy.url)),
            "a next link leads past the proxy: {link}"
        );
    }
}

/// The token `/-/identity` hands out for the /mde route, as the tool's SDK should receive it.
async fn expected_token(proxy: &TestProxy) -> String {
    let body: Value = client()
        .get(format!(
            "{}/-/identity?api-version=2019-08-01&resource={MDE}",
            proxy.url
        ))
        .header("X-IDENTITY-HEADER", HEADER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn python_requests_pages_alerts_asking_for_gzip_and_every_next_link_leads_through_the_proxy()
{
    let Some(python) = interpreter("DTP_CLIENTS_PYTHON", None) else {
        return;
    };
    let proxy = proxy().await;
    let result = run(&python, "requests_paging.py", &[&proxy.url], &[]).await;
    assert_paged(&result, 23, 5, &proxy, "/mde");
    assert!(
        result["accept_encoding"].as_str().unwrap().contains("gzip"),
        "{result}"
    );
    assert_eq!(
        proxy.control().last_accept_encoding().as_deref(),
        Some("gzip")
    );
}

#[tokio::test]
async fn python_httpx_pages_incidents_asking_for_gzip_and_every_next_link_leads_through_the_proxy()
{
    let Some(python) = interpreter("DTP_CLIENTS_PYTHON", None) else {
        return;
    };
    let proxy = proxy().await;
    let result = run(&python, "httpx_paging.py", &[&proxy.url], &[]).await;
    assert_paged(&result, 9, 5, &proxy, "/xdr");
    assert!(
        result["accept_encoding"].as_str().unwrap().contains("gzip"),
        "{result}"
    );
    assert_eq!(
        proxy.control().last_accept_encoding().as_deref(),
        Some("gzip")
    );
}

#[tokio::test]
async fn the_graph_sdk_pages_security_alerts_with_its_own_page_iterator_through_the_proxy() {
    let Some(python) = interpreter("DTP_CLIENTS_PYTHON", None) else {
        return;
    };
    let proxy = proxy().await;
    let result = run(&python, "msgraph_paging.py", &[&proxy.url], &[]).await;
    assert_paged(&result, 23, 5, &proxy, "/graph");
}

#[tokio::test]
async fn node_fetch_pages_machines_and_every_next_link_leads_through_the_proxy() {
    let Some(node) = interpreter("DTP_CLIENTS_NODE", Some("node")) else {
        return;
    };
    let proxy = proxy().await;
    let result = run(&node, "fetch_paging.mjs", &[&proxy.url], &[]).await;
    assert_paged(&result, 12, 3, &proxy, "/mde");
}

#[tokio::test]
async fn azure_identity_managed_and_default_credentials_get_the_proxys_token_from_its_identity_endpoint()
 {
    let Some(python) = interpreter("DTP_CLIENTS_PYTHON", None) else {
        return;
    };
    let proxy = proxy().await;
    let endpoint = format!("{}/-/identity", proxy.url);
    let env = [
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IDENTITY_HEADER", HEADER),
    ];
    let scope = format!("{MDE}/.default");
    let result = run(&python, "azure_identity_token.py", &[&scope], &env).await;
    let expected = expected_token(&proxy).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for credential in ["managed", "default"] {
        assert_eq!(
            result[credential]["token"],
            expected.as_str(),
            "{credential}"
        );
        assert!(
            result[credential]["expires_on"].as_u64().unwrap() > now + 60,
            "{result}"
        );
    }
}

#[tokio::test]
async fn msal_managed_identity_client_gets_the_proxys_token_from_its_identity_endpoint() {
    let Some(python) = interpreter("DTP_CLIENTS_PYTHON", None) else {
        return;
    };
    let proxy = proxy().await;
    let endpoint = format!("{}/-/identity", proxy.url);
    let env = [
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IDENTITY_HEADER", HEADER),
    ];
    let result = run(&python, "msal_token.py", &[MDE], &env).await;
    assert_eq!(result["token"], expected_token(&proxy).await.as_str());
    assert!(result["expires_in"].as_u64().unwrap() > 60, "{result}");
}
