//! Criterion micro-benchmarks of the per-request hot path (issue 6): route match, upstream URI
//! building, and the token cache hit against a warm entry (token fetched once from the in-repo
//! Entra simulator).
//!
//! Run: `cargo bench --bench hot_path` (add `-- --quick` for a shorter run).
//!
//! Header filtering (`proxy::filter_request_headers` and `filter_response_headers`, both public)
//! is not benchmarked here.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use defender_sim::{Sim, SimOptions};
use defender_token_proxy::config::{Config, Overrides};
use defender_token_proxy::metrics::Metrics;
use defender_token_proxy::route::Routes;
use defender_token_proxy::token::{EntraClient, TokenCache};

const SECRET_VAR: &str = "BENCH_CLIENT_SECRET";

/// Six routes, as a proxy fronting every Defender API (and a beta Graph path) would have.
fn config(authority: &str, upstream: &str) -> Config {
    let text = format!(
        r#"[cloud]
authority_host = "{authority}"

[credentials.bench]
type = "client_secret"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = {{ env = "{SECRET_VAR}" }}

[[routes]]
prefix = "/mde"
api = "mde"
credential = "bench"
upstream = "{upstream}"

[[routes]]
prefix = "/xdr"
api = "xdr"
credential = "bench"
upstream = "{upstream}"

[[routes]]
prefix = "/graph"
api = "graph"
credential = "bench"
upstream = "{upstream}"

[[routes]]
prefix = "/graph/beta"
api = "graph"
credential = "bench"
upstream = "{upstream}/beta"

[[routes]]
prefix = "/mdca"
api = "mdca"
credential = "bench"
upstream = "{upstream}"

[[routes]]
prefix = "/mde-eu"
api = "mde"
credential = "bench"
upstream = "{upstream}"
"#
    );
    let env = |name: &str| (name == SECRET_VAR).then(|| "demo-secret".to_owned());
    Config::from_toml(&text, "bench", Path::new("."), &Overrides::default(), &env)
        .expect("the bench config is valid")
}

fn routes(c: &mut Criterion) {
    let config = config("http://127.0.0.1:9", "http://127.0.0.1:9");
    let routes = Routes::new(config.routes).expect("the routes build");
    let mut group = c.benchmark_group("route");
    for (name, path) in [
        ("find/mde", "/mde/api/alerts"),
        ("find/graph-beta", "/graph/beta/security/alerts_v2"),
        ("find/miss", "/unknown/api/alerts"),
    ] {
        group.bench_function(name, |b| b.iter(|| routes.find(black_box(path)).is_some()));
    }
    let (route, _, _) = routes.find("/mde/api/alerts").expect("the /mde route");
    group.bench_function("uri_for", |b| {
        b.iter(|| route.upstream.uri_for(black_box("/api/alerts?$top=10")))
    });
    group.finish();
}

fn token_cache(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // The simulator's servers run on this runtime, so they are served while `block_on` runs.
    let sim = rt
        .block_on(Sim::start(SimOptions::default()))
        .expect("the simulator starts");
    let config = config(&sim.authority(), &sim.mde());
    let credential = config.credentials["bench"].clone();
    let entra = EntraClient::new(Duration::from_secs(10)).expect("an Entra client");
    let routes = Routes::new(config.routes).expect("the routes build");
    let (route, _, _) = routes.find("/mde/api/alerts").expect("the /mde route");
    let key = route.token_keys().remove(0);
    let cache = TokenCache::new(Arc::new(Metrics::default()), 16);
    // Warm the entry: the one and only token request.
    rt.block_on(cache.token(&key, &credential, &entra))
        .expect("a token from the simulator");
    assert_eq!(sim.control().token_requests(), 1);

    let mut group = c.benchmark_group("token_cache");
    group.bench_function("block_on_baseline", |b| {
        b.iter(|| rt.block_on(async { black_box(1) }))
    });
    group.bench_function("hit", |b| {
        b.iter(|| {
            rt.block_on(cache.token(black_box(&key), &credential, &entra))
                .map(|token| token.authorization())
        })
    });
    group.finish();
    assert_eq!(
        sim.control().token_requests(),
        1,
        "every lookup after the first was a cache hit"
    );
    drop(sim);
}

criterion_group!(benches, routes, token_cache);
criterion_main!(benches);
