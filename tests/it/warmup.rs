//! A partner's many listed tenants: warmed through the bounded number of token requests in flight
//! at Entra, a client's request for a cold tenant ahead of the warm-up queue.

use std::time::Duration;

use defender_sim::{EntraFault, Sim, SimOptions, SimTenant};

use crate::support::{CLIENT_ID, TestProxy, mde_config};

/// The `n`th customer tenant's id.
fn tenant(n: usize) -> String {
    format!("{n:08x}-0000-4000-8000-{n:012x}")
}

/// The standard /mde route, and a partner credential listing `tenants` behind a `{tenant}` route.
fn partner_config(sim: &Sim, tenants: &[String]) -> String {
    let listed: Vec<String> = tenants.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        r#"{base}
[credentials.partner]
type = "client_secret"
tenants = [{listed}]
client_id = "{CLIENT_ID}"
client_secret = {{ env = "SECRET" }}

[[routes]]
prefix = "/customers/{{tenant}}/mde"
api = "mde"
credential = "partner"
upstream = "{mde}"
"#,
        base = mde_config(sim, ""),
        listed = listed.join(", "),
        mde = sim.mde(),
    )
}

#[tokio::test]
async fn a_thousand_listed_tenants_are_warmed_with_at_most_sixteen_token_requests_in_flight() {
    let tenants: Vec<String> = (0..1000).map(tenant).collect();
    let sim = Sim::start(SimOptions {
        customer_tenants: tenants
            .iter()
            .map(|id| SimTenant {
                id: id.clone(),
                domain: format!("{id}.onmicrosoft.com"),
            })
            .collect(),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    // Each answer takes a moment, as Entra's do, so that requests sent together overlap.
    sim.control()
        .set_fault(Some(EntraFault::Delay(Duration::from_millis(20))));
    let proxy = TestProxy::start_on(sim, |sim| partner_config(sim, &tenants)).await;
    let control = proxy.control();

    // The last tenant is warmed last; a client asking for it does not wait for the others.
    let last = proxy
        .get(&format!("/customers/{}/mde/api/alerts", tenants[999]))
        .await;
    assert_eq!(last.status(), 200);
    assert!(
        control.token_requests() < 1001,
        "the client's token came after the whole warm-up ({} token requests)",
        control.token_requests()
    );

    // The home tenant and the 999 other customers: every token is requested once.
    assert!(
        control
            .wait_for_token_requests(1001, Duration::from_secs(120))
            .await,
        "the warm-up stopped at {} token requests",
        control.token_requests()
    );
    let most = control.most_token_requests_in_flight();
    assert!(
        (2..=16).contains(&most),
        "{most} token requests in flight at once"
    );
    assert_eq!(control.token_requests_in(&tenants[999]), 1);
}
