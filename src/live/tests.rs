//! The route-held token slot seen from the running state: a fixed key's slot is the route's and the
//! cache's alike (status, readiness, the identity endpoint, warm-up), a reload keeps it while its
//! credential stays and drops it with its route, and partner tenants and user credentials stay on
//! moka. Likewise the budget a route with one tenant holds: the budgets' own, across a reload too.

use std::path::Path;
use std::sync::Arc;

use defender_sim::{Sim, SimOptions};
use http::HeaderMap;

use super::AppState;
use crate::config::{Config, Overrides};
use crate::route::{Route, Source, Tenancy};
use crate::token::{AccessToken, TokenEntry};

const CREDENTIAL: &str = r#"
[credentials.app]
type = "client_secret"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = { env = "SECRET" }
"#;

fn route(prefix: &str, api: &str, upstream: &str) -> String {
    format!(
        "\n[[routes]]\nprefix = \"{prefix}\"\napi = \"{api}\"\ncredential = \"app\"\nupstream = \"{upstream}\"\n"
    )
}

fn config(sim: &Sim, rest: &str) -> Config {
    let text = format!("[cloud]\nauthority_host = \"{}\"\n{rest}", sim.authority());
    let env = |name: &str| (name == "SECRET").then(|| "demo-secret".to_owned());
    Config::from_toml(
        &text,
        "test.toml",
        Path::new("."),
        &Overrides::default(),
        &env,
    )
    .unwrap()
}

/// Two routes sharing the credential's MDE token.
fn two_mde_routes(sim: &Sim) -> String {
    format!(
        "{CREDENTIAL}{}{}",
        route("/mde", "mde", &sim.mde()),
        route("/mde2", "mde", &sim.mde())
    )
}

fn state(config: Config) -> AppState {
    AppState::new(config, "127.0.0.1:9".parse().unwrap(), None).unwrap()
}

/// The token a request to `path` gets, through the route as the proxy asks for it.
async fn token_at(state: &AppState, path: &str) -> Arc<AccessToken> {
    let live = state.live();
    let (route, _, segment) = live.routes.find(path).unwrap();
    let Source::Cache(entry) = route.source(segment, &HeaderMap::new()).unwrap() else {
        panic!("a cached token");
    };
    state
        .tokens()
        .token_for(&entry, &route.credential, &live.entra)
        .await
        .unwrap()
}

fn mde_route(state: &AppState) -> Arc<Route> {
    state.live().routes.find("/mde").unwrap().0.clone()
}

#[tokio::test]
async fn a_fixed_key_routes_token_comes_from_the_slot_it_holds_and_status_and_readiness_see_it() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let state = state(config(&sim, &two_mde_routes(&sim)));
    let key = mde_route(&state).token_keys().remove(0);
    assert_eq!(
        state.tokens().pinned_len(),
        1,
        "one slot for the shared key"
    );

    let token = token_at(&state, "/mde/api/alerts").await;
    assert!(
        !state.tokens().in_moka(&key),
        "the route's request went past moka"
    );
    assert!(Arc::ptr_eq(
        &token,
        &token_at(&state, "/mde2/api/alerts").await
    ));
    assert_eq!(state.tokens().status(&key).state(), "valid");
    // Readiness and the identity endpoint ask by key: they find the same slot.
    let by_key = state
        .tokens()
        .token(&key, &mde_route(&state).credential, &state.live().entra)
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&token, &by_key));
    assert!(!state.tokens().in_moka(&key));
    assert_eq!(sim.control().token_requests(), 1);
}

#[tokio::test]
async fn a_reload_keeps_the_pinned_token_while_its_credential_stays_and_drops_it_with_its_route() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let state = state(config(&sim, &two_mde_routes(&sim)));
    let key = mde_route(&state).token_keys().remove(0);
    let token = token_at(&state, "/mde/api/alerts").await;

    state.apply(config(&sim, &two_mde_routes(&sim))).unwrap();
    assert!(Arc::ptr_eq(
        &token,
        &token_at(&state, "/mde/api/alerts").await
    ));
    assert_eq!(state.tokens().status(&key).state(), "valid");

    let xdr_only = format!("{CREDENTIAL}{}", route("/xdr", "xdr", &sim.xdr()));
    state.apply(config(&sim, &xdr_only)).unwrap();
    assert_eq!(state.tokens().pinned_len(), 1, "only /xdr's key");
    assert_eq!(state.tokens().status(&key).state(), "none");
    assert!(!state.tokens().in_moka(&key));
}

#[tokio::test]
async fn a_route_with_one_tenant_holds_the_budgets_own_budget_and_a_reload_keeps_it() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let state = state(config(&sim, &two_mde_routes(&sim)));
    let budget_of = |state: &AppState| {
        let live = state.live();
        let route = mde_route(state);
        let source = route.source(None, &HeaderMap::new()).unwrap();
        let held = route.budget_in(&live.budgets, &source);
        assert!(Arc::ptr_eq(&held, &route.budget_in(&live.budgets, &source)));
        let Source::Cache(entry) = &source else {
            panic!("a cached token");
        };
        let looked_up = live.budgets.get(&route.budget, &entry.tenant);
        assert!(
            Arc::ptr_eq(&held, &looked_up),
            "the route's is the budgets' own"
        );
        held
    };
    let before = budget_of(&state);
    state.apply(config(&sim, &two_mde_routes(&sim))).unwrap();
    assert!(Arc::ptr_eq(&before, &budget_of(&state)));
}

#[tokio::test]
async fn an_upstream_401_drops_a_pinned_token_at_most_once_in_30_seconds() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let state = state(config(&sim, &two_mde_routes(&sim)));
    let live = state.live();
    let route = mde_route(&state);
    let Tenancy::Fixed {
        key,
        slot: Some(slot),
    } = &route.tenancy
    else {
        panic!("a pinned slot");
    };
    let entry = TokenEntry::pinned(key, slot);
    let first = token_at(&state, "/mde/api/alerts").await;

    assert!(state.tokens().invalidate(&entry, &first), "dropped");
    assert_eq!(state.tokens().status(key).state(), "none");
    let second = state
        .tokens()
        .token_for(&entry, &route.credential, &live.entra)
        .await
        .unwrap();
    assert!(!Arc::ptr_eq(&first, &second));
    assert!(Arc::ptr_eq(
        &second,
        &token_at(&state, "/mde2/api/alerts").await
    ));
    assert!(
        !state.tokens().invalidate(&entry, &second),
        "a second 401 within 30 s goes to the client"
    );
    assert_eq!(state.tokens().status(key).state(), "valid");
    assert_eq!(sim.control().token_requests(), 2);
}

#[tokio::test]
async fn partner_tenants_and_user_credentials_stay_on_moka() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let partner = format!(
        "{}{}",
        CREDENTIAL.replace(
            "tenant = \"contoso.onmicrosoft.com\"",
            "tenants = [\"contoso.onmicrosoft.com\", \"fabrikam.onmicrosoft.com\"]"
        ),
        route("/customers/{tenant}/mde", "mde", &sim.mde())
    );
    let partner = state(config(&sim, &partner));
    assert!(matches!(
        mde_route_at(&partner, "/customers/contoso.onmicrosoft.com/mde").tenancy,
        Tenancy::PerRequest { .. }
    ));
    assert_eq!(partner.tokens().pinned_len(), 0);

    let user = format!(
        "[credentials.app]\ntype = \"password\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"11111111-2222-3333-4444-555555555555\"\nusername = \"analyst@contoso.onmicrosoft.com\"\npassword = {{ env = \"SECRET\" }}\n{}",
        route("/mde", "mde", &sim.mde())
    );
    let user = state(config(&sim, &user));
    assert!(matches!(
        mde_route(&user).tenancy,
        Tenancy::Fixed { slot: None, .. }
    ));
    assert_eq!(user.tokens().pinned_len(), 0);
}

fn mde_route_at(state: &AppState, path: &str) -> Arc<Route> {
    state.live().routes.find(path).unwrap().0.clone()
}
