//! Criterion micro-benchmarks of the per-request hot path (issue 6): route match, upstream URI
//! building, the token cache hit against a warm entry (token fetched once from the in-repo
//! Entra simulator), and link rewriting of an alerts page (issue 11).
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
use defender_token_proxy::rewrite::{LinkTable, Links};
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

/// The page bench/profile.sh serves: 20 alerts of four short members each, no link (3,011 bytes).
fn alerts(upstream: &str, links: bool) -> Vec<u8> {
    let alerts: Vec<String> = (1..=20)
        .map(|n| {
            format!(
                r#"{{"id":"da{n:020}","severity":"High","title":"Suspicious PowerShell command line","machineId":"1e5bc9d7e413ddd7902c2932e418702b84d0cc07"}}"#
            )
        })
        .collect();
    let value = alerts.join(",");
    if links {
        // As Defender sends a page with more to come: the context first, the next page last.
        format!(
            r#"{{"@odata.context":"{upstream}/api/$metadata#Alerts","value":[{value}],"@odata.nextLink":"{upstream}/api/alerts?$skip=20"}}"#
        )
    } else {
        format!(r#"{{"value":[{value}]}}"#)
    }
    .into_bytes()
}

fn rewrite(c: &mut Criterion) {
    let upstream = "http://127.0.0.1:9";
    let config = config(upstream, upstream);
    let routes = Routes::new(config.routes).expect("the routes build");
    let links = Links::new(Arc::new(LinkTable::new(&routes)), "http://127.0.0.1:8080");
    let plain = alerts(upstream, false);
    let linked = alerts(upstream, true);
    let rewritten = links.rewrite_chunks([&linked[..]]);
    assert!(rewritten.starts_with(br#"{"@odata.context":"http://127.0.0.1:8080/mde/api/"#));
    assert_eq!(links.rewrite_chunks([&plain[..]]), plain);
    let mut group = c.benchmark_group("rewrite");
    // One chunk: a page that arrives in one frame, as the profile's does.
    group.bench_function("alerts_page", |b| {
        b.iter(|| links.rewrite_chunks([black_box(&plain[..])]))
    });
    group.bench_function("alerts_page_with_links", |b| {
        b.iter(|| links.rewrite_chunks([black_box(&linked[..])]))
    });
    // Streamed: cut where the page's strings and links do not line up with the chunks.
    group.bench_function("alerts_page_with_links_in_100_byte_chunks", |b| {
        b.iter(|| links.rewrite_chunks(black_box(&linked[..]).chunks(100)))
    });
    group.finish();
}

criterion_group!(benches, routes, token_cache, rewrite);
criterion_main!(benches);
