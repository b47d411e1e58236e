//! The fixed configuration the request-target and link-rewrite targets run against: every API
//! preset, a second route under an existing prefix, an upstream with a base path on a host that
//! another route also uses, and a loopback upstream with a port and a base path.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

use defender_token_proxy::config::{Config, Overrides};
use defender_token_proxy::route::Routes;
use defender_token_proxy::screen::Screen;

/// The listener the screen is built for.
pub const LISTEN: &str = "127.0.0.1:8080";

/// The proxy base the link-rewrite target rewrites to.
pub const PROXY_BASE: &str = "http://127.0.0.1:8080";

pub const CONFIG: &str = r#"
[server]
allowed_hosts = ["proxy.internal"]
allowed_origins = ["https://tool.example"]

[credentials.app]
type = "client_secret"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = "fuzz-literal-secret-not-a-real-one"

[[routes]]
prefix = "/mde"
api = "mde"
credential = "app"

[[routes]]
prefix = "/mde/eu"
api = "mde"
credential = "app"
upstream = "https://eu.api.security.microsoft.com"

[[routes]]
prefix = "/xdr"
api = "xdr"
credential = "app"

[[routes]]
prefix = "/graph"
api = "graph"
credential = "app"

[[routes]]
prefix = "/beta"
api = "graph"
credential = "app"
upstream = "https://graph.microsoft.com/beta"

[[routes]]
prefix = "/mdca"
api = "mdca"
credential = "app"
upstream = "https://contoso.us2.portal.cloudappsecurity.com"

[[routes]]
prefix = "/local"
credential = "app"
upstream = "http://127.0.0.1:9000/base/"
scope = "api://local/.default"
"#;

/// The validated fixed config.
pub fn config() -> Config {
    Config::from_toml(
        CONFIG,
        "fuzz-fixed.toml",
        Path::new("/nonexistent"),
        &Overrides::default(),
        &|_| None,
    )
    .expect("the fixed fuzz config is valid")
}

/// The route table and the screen of the fixed config.
pub fn routes_and_screen() -> (Routes, Screen) {
    let config = config();
    let listen: SocketAddr = LISTEN.parse().unwrap();
    let screen = Screen::new(
        listen,
        &config.server.allowed_hosts,
        &config.server.allowed_origins,
    );
    (
        Routes::new(config.routes)
        .expect("the routes build"),
        screen,
    )
}

/// The upstream base URLs of `routes` as the link table matches them (no trailing slash).
pub fn upstream_bases(routes: &Routes) -> Vec<String> {
    let mut bases: Vec<String> = routes
        .iter()
        .map(|r| r.upstream.url().as_str().trim_end_matches('/').to_owned())
        .collect();
    bases.sort();
    bases.dedup();
    bases
}
