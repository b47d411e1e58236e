//! Rate-limit budgets keyed by what Microsoft counts: each partner tenant has its own, routes on
//! one app and tenant share one, an upstream 429 holds only the budget it came from, and a budget
//! driven flat out never lets more than its limit into any window the simulator counts.

use std::time::{Duration, Instant};

use defender_sim::{Sim, SimOptions, SimQuota, SimQuotas, SimTenant};
use serde_json::Value;

use crate::support::{CLIENT_ID, TestProxy, mde_config};

const HOME: &str = "6f1d0a52-8e2b-4c7a-9d3e-2a5b7c9e1f04";
const FABRIKAM: &str = "0c6e2d47-35a1-4f0e-9b8c-7d2a51e6f3b9";

fn partner_options() -> SimOptions {
    SimOptions {
        customer_tenants: vec![SimTenant {
            id: FABRIKAM.into(),
            domain: "fabrikam.onmicrosoft.com".into(),
        }],
        ..SimOptions::default()
    }
}

/// A partner credential for the home tenant and Fabrikam with a `{tenant}` route to MDE limited
/// by `rate_limit` (a TOML line, or nothing), answering 429 at once past its budget.
fn partner_config(sim: &Sim, rate_limit: &str) -> String {
    format!(
        r#"
[server]
rate_limit_max_wait = "100ms"

[cloud]
authority_host = "{authority}"

[credentials.partner]
type = "client_secret"
tenants = ["{HOME}", "{FABRIKAM}"]
client_id = "{CLIENT_ID}"
client_secret = {{ env = "SECRET" }}

[[routes]]
prefix = "/customers/{{tenant}}/mde"
api = "mde"
credential = "partner"
upstream = "{mde}"
{rate_limit}
"#,
        authority = sim.authority(),
        mde = sim.mde(),
    )
}

async fn statuses(proxy: &TestProxy, path: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(proxy.get(path).await.status().as_u16());
    }
    statuses
}

async fn status(proxy: &TestProxy) -> Value {
    proxy.admin("/-/status").await.json().await.unwrap()
}

/// The `/-/status` entry of the budget labelled `label`.
fn budget<'a>(status: &'a Value, label: &str) -> &'a Value {
    status["rate_limits"]["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["budget"] == label)
        .unwrap_or_else(|| panic!("no budget {label} in {status}"))
}

#[tokio::test]
async fn partner_tenants_each_get_their_full_budget() {
    let proxy = TestProxy::start_with(partner_options(), |sim| {
        partner_config(sim, "rate_limit = { per_minute = 2 }")
    })
    .await;
    let home = format!("/customers/{HOME}/mde/api/alerts");
    let fabrikam = format!("/customers/{FABRIKAM}/mde/api/alerts");
    assert_eq!(statuses(&proxy, &home, 3).await, [200, 200, 429]);
    assert_eq!(
        statuses(&proxy, &fabrikam, 3).await,
        [200, 200, 429],
        "one customer's requests spent another's budget"
    );
    let status = status(&proxy).await;
    let label = format!("custom-2m/{CLIENT_ID}/{FABRIKAM}");
    let entry = budget(&status, &label);
    assert_eq!(entry["remaining_minute"], 0);
    assert_eq!(entry["refusals"], 1);
    assert_eq!(
        proxy
            .metric(&format!(
                r#"defender_token_proxy_rate_limit_budget_refusals_total{{budget="{label}"}}"#
            ))
            .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn two_routes_on_one_app_and_tenant_share_one_budget() {
    for rate_limit in [
        "rate_limit = { per_minute = 2 }",
        "rate_limit = { per_minute = 2, budget = \"mde-tools\" }",
    ] {
        let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
            let mde = mde_config(sim, "rate_limit_max_wait = \"100ms\"");
            format!(
                "{mde}{rate_limit}\n\n[[routes]]\nprefix = \"/mde-readonly\"\napi = \"mde\"\n\
                 credential = \"app\"\nupstream = \"{}\"\nmethods = [\"GET\"]\n{rate_limit}\n",
                sim.mde()
            )
        })
        .await;
        assert_eq!(statuses(&proxy, "/mde/api/alerts", 1).await, [200]);
        assert_eq!(statuses(&proxy, "/mde-readonly/api/alerts", 1).await, [200]);
        assert_eq!(
            statuses(&proxy, "/mde-readonly/api/alerts", 1).await,
            [429],
            "{rate_limit}: the second route had an allowance of its own"
        );
        assert_eq!(statuses(&proxy, "/mde/api/alerts", 1).await, [429]);
        assert_eq!(proxy.control().api_requests(), 2);
    }
}

#[tokio::test]
async fn an_upstream_429_for_one_tenant_holds_that_tenant_only() {
    let proxy = TestProxy::start_with(partner_options(), |sim| partner_config(sim, "")).await;
    // The simulator answers 429 with Retry-After: 7.
    let throttled = format!("/customers/{HOME}/mde/_sim/status/429");
    assert_eq!(statuses(&proxy, &throttled, 1).await, [429]);
    let held = proxy
        .get(&format!("/customers/{HOME}/mde/api/alerts"))
        .await;
    assert_eq!(held.status(), 429);
    assert_eq!(held.json::<Value>().await.unwrap()["kind"], "rate_limited");
    assert_eq!(
        statuses(&proxy, &format!("/customers/{FABRIKAM}/mde/api/alerts"), 1).await,
        [200],
        "one customer's 429 held another"
    );
    let status = status(&proxy).await;
    let label = format!("route:/customers/{{tenant}}/mde/{CLIENT_ID}/{HOME}");
    let entry = budget(&status, &label);
    let held_for = entry["held_for_s"].as_f64().unwrap();
    assert!((1.0..=7.0).contains(&held_for), "{entry}");
    assert_eq!(entry["holds"], 1);
    let other = format!("route:/customers/{{tenant}}/mde/{CLIENT_ID}/{FABRIKAM}");
    assert_eq!(budget(&status, &other)["held_for_s"], Value::Null);
    assert_eq!(status["rate_limits"]["retry_after_max_s"], 600);
}

#[tokio::test]
async fn an_upstream_retry_after_is_capped_at_retry_after_max() {
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        mde_config(
            sim,
            "rate_limit_max_wait = \"5s\"\nretry_after_max = \"1s\"",
        )
    })
    .await;
    assert_eq!(statuses(&proxy, "/mde/_sim/status/429", 1).await, [429]);
    let started = std::time::Instant::now();
    // Held for 1 s rather than the upstream's 7 s: it waits, then goes.
    assert_eq!(statuses(&proxy, "/mde/api/alerts", 1).await, [200]);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn the_simulators_quota_per_app_and_tenant_holds_only_the_budget_that_met_it() {
    let options = SimOptions {
        quotas: SimQuotas {
            mde: SimQuota {
                per_minute: Some(2),
                per_hour: None,
            },
            ..SimQuotas::MICROSOFT
        },
        ..partner_options()
    };
    // No client-side limit: the upstream's 429 is what the proxy meets.
    let proxy = TestProxy::start_with(options, |sim| partner_config(sim, "")).await;
    let home = format!("/customers/{HOME}/mde/api/alerts");
    assert_eq!(statuses(&proxy, &home, 2).await, [200, 200]);
    let upstream = proxy.get(&home).await;
    assert_eq!(upstream.status(), 429);
    assert!(upstream.headers().contains_key("retry-after"));
    assert!(!upstream.headers().contains_key("x-token-proxy-error"));
    let body: Value = upstream.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "API calls quota exceeded! maximum allowed 2 per 00:01:00"
    );
    // The proxy now holds that tenant's budget and answers itself, without sending.
    let sent = proxy.control().api_requests();
    let held = proxy.get(&home).await;
    assert_eq!(held.status(), 429);
    assert!(held.headers().contains_key("x-token-proxy-error"));
    assert_eq!(proxy.control().api_requests(), sent);
    let fabrikam = format!("/customers/{FABRIKAM}/mde/api/alerts");
    assert_eq!(statuses(&proxy, &fabrikam, 2).await, [200, 200]);
}

/// The simulator's MDE quota made quick: 5 calls in any 2 s (its "minute", a sliding window).
pub(crate) fn short_quota() -> SimOptions {
    SimOptions {
        quotas: SimQuotas {
            minute: Duration::from_secs(2),
            mde: SimQuota {
                per_minute: Some(5),
                per_hour: None,
            },
            ..SimQuotas::MICROSOFT
        },
        ..SimOptions::default()
    }
}

/// The proxy's budget for [`short_quota`]: 5 per window, the window a little longer than the
/// simulator's because the proxy counts a call when it lets it go and the simulator when it
/// arrives; requests wait rather than being refused.
pub(crate) const SHORT_BUDGET: &str = "rate_limit = { per_minute = 5, window = \"2500ms\" }\n";

/// How long the budgets are driven: more than two of the simulator's windows.
pub(crate) const FLAT_OUT: Duration = Duration::from_secs(6);

/// Sends requests to `url` from `clients` loops, each sending its next as soon as the last is
/// answered, for [`FLAT_OUT`]; returns every status with whether the proxy (not the upstream)
/// answered it.
pub(crate) async fn flat_out(urls: &[String], clients: usize) -> Vec<(u16, bool)> {
    let started = Instant::now();
    let loops: Vec<_> = (0..clients)
        .map(|i| {
            let url = urls[i % urls.len()].clone();
            tokio::spawn(async move {
                let client = crate::support::client();
                let mut statuses = Vec::new();
                while started.elapsed() < FLAT_OUT {
                    let response = client.get(&url).send().await.unwrap();
                    let by_proxy = response.headers().contains_key("x-token-proxy-error");
                    statuses.push((response.status().as_u16(), by_proxy));
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for one in loops {
        statuses.extend(one.await.unwrap());
    }
    statuses
}

#[tokio::test]
async fn a_budget_driven_flat_out_for_several_windows_never_meets_the_upstreams_429() {
    let proxy = TestProxy::start_with(short_quota(), |sim| {
        format!(
            "{}{SHORT_BUDGET}",
            mde_config(sim, "rate_limit_max_wait = \"10s\"")
        )
    })
    .await;
    let statuses = flat_out(&[format!("{}/mde/api/alerts", proxy.url)], 4).await;
    assert!(
        statuses.iter().all(|(status, _)| *status == 200),
        "{statuses:?}"
    );
    // It kept going: a full allowance in each of the windows it spanned.
    let sent = proxy.control().api_requests();
    assert_eq!(sent, statuses.len() as u64);
    assert!(sent >= 10, "{sent}");
}
