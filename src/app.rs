//! The application: shared state, the router with its whole middleware stack, and `run`, which
//! serves it on a listener the caller bound until the caller's shutdown future completes.

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::header;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::config::Config;
use crate::credential::Credential;
use crate::proxy::{self, UpstreamClient};
use crate::route::Routes;
use crate::token::{EntraClient, TokenCache, TokenKey};
use crate::{health, telemetry};

/// What every request handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) routes: Arc<Routes>,
    pub(crate) tokens: TokenCache,
    pub(crate) client: UpstreamClient,
    pub(crate) upstream_timeout: Duration,
}

impl AppState {
    /// Builds the state: the route table, the token cache and the HTTP clients.
    pub fn new(config: Config) -> io::Result<Self> {
        let entra =
            EntraClient::new(&config.authority, config.token_timeout).map_err(io::Error::other)?;
        Ok(Self {
            routes: Arc::new(Routes::new(config.routes)),
            tokens: TokenCache::new(entra),
            client: proxy::upstream_client(config.server.upstream_connect_timeout)?,
            upstream_timeout: config.server.upstream_timeout,
        })
    }

    /// Every distinct token the routes need, with its credential.
    pub(crate) fn token_keys(&self) -> Vec<(TokenKey, Arc<Credential>)> {
        let mut seen = HashSet::new();
        self.routes
            .iter()
            .filter(|r| seen.insert(r.token_key.clone()))
            .map(|r| (r.token_key.clone(), r.credential.clone()))
            .collect()
    }

    /// Starts fetching every route's token, so that the first request does not wait for Entra.
    fn warm_up(&self) {
        for (key, credential) in self.token_keys() {
            let tokens = self.tokens.clone();
            // Failures are logged by the cache and reported by /-/ready; nothing more to do here.
            tokio::spawn(async move { drop(tokens.token(&key, &credential).await) });
        }
    }
}

/// The router and its middleware stack. Layers run top to bottom for a request.
pub fn router(state: AppState) -> Router {
    let layers = ServiceBuilder::new()
        // First, so that nothing after it (tracing included) can print these headers' values.
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::PROXY_AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(telemetry::trace_layer());
    Router::new()
        .route("/-/healthy", get(health::healthy))
        .route("/-/ready", get(health::ready))
        .fallback(proxy::forward)
        .layer(layers)
        .with_state(state)
}

/// Runs the proxy on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let state = AppState::new(config)?;
    tracing::info!(
        listen = %listener.local_addr()?,
        routes = %state.routes.prefixes().join(" "),
        "defender-token-proxy is listening"
    );
    state.warm_up();
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        // Small request/response exchanges are the norm; don't let Nagle delay them.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
