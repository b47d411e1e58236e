//! The application: shared state (the live configuration behind an atomic swap, the token cache,
//! metrics, lifecycle), the two routers with their middleware stacks, and `run`, which serves them
//! until the caller's shutdown future completes and then drains within the grace period.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use axum::Router;
use axum::middleware::from_fn_with_state;
use http::header;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceBuilder;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::config::{Config, ConfigSource, WatchedFile};
use crate::credential::Credential;
use crate::metrics::{Metrics, RouteMetrics};
use crate::proxy::{self, UpstreamClient};
use crate::rewrite::LinkTable;
use crate::route::Routes;
use crate::screen::{self, Screen};
use crate::secret::Secret;
use crate::token::{EntraClient, TokenCache, TokenKey};
use crate::{admin, inbound, reload, server, telemetry};

/// The route label of requests answered before a route was chosen (unknown prefix, refused
/// authentication).
const NO_ROUTE: &str = "-";
/// How long the admin listener may take to close once the main listener has drained.
const ADMIN_CLOSE: Duration = Duration::from_secs(2);

/// Everything that comes from the configuration and is replaced as a whole on reload.
pub(crate) struct Live {
    pub(crate) routes: Routes,
    pub(crate) credentials: BTreeMap<String, Arc<Credential>>,
    pub(crate) entra: EntraClient,
    pub(crate) client: UpstreamClient,
    pub(crate) upstream_timeout: Duration,
    pub(crate) replay_max_body_bytes: usize,
    pub(crate) shutdown_grace: Duration,
    pub(crate) watch_interval: Duration,
    pub(crate) api_keys: Vec<Secret>,
    pub(crate) files: Vec<WatchedFile>,
    pub(crate) screen: Screen,
    pub(crate) links: Arc<LinkTable>,
    /// Inbound TLS, rebuilt on reload so that a renewed certificate is used for new connections.
    pub(crate) tls: Option<TlsAcceptor>,
    /// The scheme clients reach the proxy with, for rewritten links.
    pub(crate) scheme: &'static str,
    /// Requests in flight (bodies included) are limited by this.
    pub(crate) in_flight: Arc<Semaphore>,
    /// Settings a reload cannot change (the listeners are bound once).
    pub(crate) restart_only: (SocketAddr, bool, Option<SocketAddr>),
}

impl Live {
    /// The live state of `config` for a main listener bound to `local`.
    fn new(config: Config, local: SocketAddr) -> io::Result<Self> {
        let routes = Routes::new(config.routes);
        let tls = config.server.tls.map(TlsAcceptor::from);
        Ok(Self {
            scheme: if tls.is_some() { "https" } else { "http" },
            tls,
            in_flight: Arc::new(Semaphore::new(config.server.max_concurrent_requests)),
            screen: Screen::new(
                local,
                &config.server.allowed_hosts,
                &config.server.allowed_origins,
            ),
            restart_only: (
                config.server.listen,
                config.server.allow_remote,
                config.admin_listen,
            ),
            entra: EntraClient::new(config.token_timeout).map_err(io::Error::other)?,
            client: proxy::upstream_client(config.server.upstream_connect_timeout)?,
            upstream_timeout: config.server.upstream_timeout,
            replay_max_body_bytes: config.server.replay_max_body_bytes,
            shutdown_grace: config.server.shutdown_grace,
            watch_interval: config.server.watch_interval,
            api_keys: config.server.api_keys,
            links: Arc::new(LinkTable::new(&routes)),
            routes,
            credentials: config.credentials,
            files: config.files,
        })
    }

    /// Every distinct token the routes need, with its credential, in config order: each partner
    /// customer tenant's too.
    pub(crate) fn token_keys(&self) -> Vec<NeededToken> {
        let mut seen = HashSet::new();
        self.routes
            .iter()
            .flat_map(|r| {
                r.token_keys().into_iter().map(|key| NeededToken {
                    key,
                    credential: r.credential.clone(),
                    customer: r.credential.partner,
                })
            })
            .filter(|needed| seen.insert(needed.key.clone()))
            .collect()
    }
}

/// A token the routes need.
pub(crate) struct NeededToken {
    pub(crate) key: TokenKey,
    pub(crate) credential: Arc<Credential>,
    /// Whether it is a partner customer's: one customer's failure (say, consent not granted) must
    /// not make the proxy unready for the others, so readiness reports it without waiting on it.
    pub(crate) customer: bool,
}

/// The outcome of the last reload, for `/-/status`.
#[derive(Debug, Clone)]
pub(crate) struct ReloadRecord {
    pub(crate) at: SystemTime,
    pub(crate) error: Option<String>,
}

struct Shared {
    live: ArcSwap<Live>,
    /// The main listener's address (the screen accepts it as `Host`).
    local: SocketAddr,
    tokens: TokenCache,
    metrics: Arc<Metrics>,
    no_route: RouteMetrics,
    shutting_down: AtomicBool,
    started_at: SystemTime,
    source: Option<ConfigSource>,
    last_reload: Mutex<Option<ReloadRecord>>,
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Builds the state from a validated configuration, for a main listener bound to `local`.
    pub fn new(config: Config, local: SocketAddr) -> io::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let source = config.source.clone();
        Ok(Self(Arc::new(Shared {
            live: ArcSwap::from_pointee(Live::new(config, local)?),
            local,
            tokens: TokenCache::new(metrics.clone()),
            no_route: metrics.route(NO_ROUTE),
            metrics,
            shutting_down: AtomicBool::new(false),
            started_at: SystemTime::now(),
            source,
            last_reload: Mutex::new(None),
        })))
    }

    /// The current configuration. Requests keep the one they started with across a reload.
    pub(crate) fn live(&self) -> Arc<Live> {
        self.0.live.load_full()
    }

    pub(crate) fn tokens(&self) -> &TokenCache {
        &self.0.tokens
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The metric handles for requests answered before a route was chosen.
    pub(crate) fn no_route_metrics(&self) -> &RouteMetrics {
        &self.0.no_route
    }

    pub(crate) fn source(&self) -> Option<&ConfigSource> {
        self.0.source.as_ref()
    }

    pub(crate) fn started_at(&self) -> SystemTime {
        self.0.started_at
    }

    pub(crate) fn last_reload(&self) -> Option<ReloadRecord> {
        self.0
            .last_reload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether a shutdown has begun (readiness then answers 503).
    pub(crate) fn shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::Acquire)
    }

    /// Starts fetching every route's token, so that the first request does not wait for Entra.
    pub(crate) fn warm_up(&self) {
        let live = self.live();
        for NeededToken {
            key, credential, ..
        } in live.token_keys()
        {
            let (tokens, entra) = (self.tokens().clone(), live.entra.clone());
            // Failures are logged by the cache and reported by /-/ready; nothing more to do here.
            tokio::spawn(async move { drop(tokens.token(&key, &credential, &entra).await) });
        }
    }

    /// Swaps in a new configuration: tokens of credentials that changed or went are dropped, and
    /// the new routes' tokens are fetched. On error the running configuration stays.
    pub(crate) fn apply(&self, config: Config) -> io::Result<()> {
        let live = Live::new(config, self.0.local)?;
        if live.restart_only != self.live().restart_only {
            tracing::warn!(
                "server.listen, server.allow_remote and admin.listen take effect only after a restart"
            );
        }
        let current: HashSet<(Arc<str>, u64)> = live
            .credentials
            .values()
            .map(|c| (c.name.clone(), c.fingerprint))
            .collect();
        let dropped = self
            .tokens()
            .retain(|key| current.contains(&(key.credential.clone(), key.fingerprint)));
        self.0.live.store(Arc::new(live));
        self.warm_up();
        tracing::info!(dropped_tokens = dropped, "configuration reloaded");
        Ok(())
    }

    /// Records a reload's outcome for status and metrics.
    pub(crate) fn record_reload(&self, error: Option<String>) {
        self.metrics().reload(error.is_none());
        *self.0.last_reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(ReloadRecord {
            at: SystemTime::now(),
            error,
        });
    }
}

/// The main router: the proxy's own endpoints and forwarding, behind the middleware stack. Layers
/// run top to bottom for a request.
pub fn router(state: AppState) -> Router {
    let layers = ServiceBuilder::new()
        // First, so that nothing after it (tracing included) can print these headers' values.
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::PROXY_AUTHORIZATION,
            header::COOKIE,
            inbound::API_KEY_HEADER,
        ]))
        .layer(telemetry::trace_layer())
        // Load shedding before any work: beyond the in-flight limit, 503 at once.
        .layer(from_fn_with_state(state.clone(), server::shed))
        // Browser, Host and request-target checks: first, so a refused request reaches nothing.
        .layer(from_fn_with_state(state.clone(), screen::screen))
        // Before any handler, so that an unauthenticated request reaches nothing.
        .layer(from_fn_with_state(state.clone(), inbound::authenticate));
    admin::routes()
        .fallback(proxy::forward)
        .layer(layers)
        .with_state(state)
}

/// The admin router: health, readiness, metrics and status only. It never forwards, so it may
/// listen where probes and Prometheus can reach it.
pub fn admin_router(state: AppState) -> Router {
    admin::routes()
        .layer(telemetry::trace_layer())
        .with_state(state)
}

/// Runs the proxy on `listener` (and the admin listener `config.admin_listen`, if any) until
/// `shutdown` completes, then lets in-flight requests finish within `server.shutdown_grace`.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let admin = match config.admin_listen {
        Some(address) => Some(TcpListener::bind(address).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen on {address} (admin.listen): {e}"),
            )
        })?),
        None => None,
    };
    run_with_admin(listener, admin, config, shutdown).await
}

/// [`run`] with an admin listener the caller bound (tests bind port 0).
pub async fn run_with_admin(
    listener: TcpListener,
    admin: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let config_limits = config.server.limits;
    let state = AppState::new(config, listener.local_addr()?)?;
    tracing::info!(
        listen = %listener.local_addr()?,
        admin = %admin.as_ref().map(|a| a.local_addr().map(|a| a.to_string())).transpose()?.unwrap_or_default(),
        routes = %state.live().routes.prefixes().join(" "),
        "defender-token-proxy is listening"
    );
    state.warm_up();
    let (stop, stopping) = watch::channel(false);
    let (stop_admin, admin_stopping) = watch::channel(false);
    let limits = config_limits;
    let mut main = server::serve(
        listener,
        router(state.clone()),
        state.clone(),
        limits,
        stopping.clone(),
    );
    let admin = admin.map(|listener| serve(listener, admin_router(state.clone()), admin_stopping));
    if state.source().is_some() {
        tokio::spawn(reload::watch(state.clone(), stopping));
    }
    let outcome = tokio::select! {
        joined = &mut main => joined.map_err(io::Error::other).and_then(|served| served),
        () = shutdown => {
            state.0.shutting_down.store(true, Ordering::Release);
            let grace = state.live().shutdown_grace;
            tracing::info!(grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX), "shutting down: draining in-flight requests");
            let _ = stop.send(true);
            match tokio::time::timeout(grace, &mut main).await {
                Ok(joined) => joined.map_err(io::Error::other).and_then(|served| served),
                Err(_) => {
                    tracing::warn!("the grace period ended with requests still in flight; stopping anyway");
                    main.abort();
                    Ok(())
                }
            }
        }
    };
    // The admin listener outlives the drain, so probes see 503 rather than a refused connection.
    let _ = stop_admin.send(true);
    if let Some(admin) = admin {
        if tokio::time::timeout(ADMIN_CLOSE, admin).await.is_err() {
            tracing::debug!("the admin listener did not close in time");
        }
    }
    tracing::info!("stopped");
    outcome
}

/// Serves the admin router on `listener` in its own task until `stopping` turns true.
fn serve(
    listener: TcpListener,
    router: Router,
    mut stopping: watch::Receiver<bool>,
) -> JoinHandle<io::Result<()>> {
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        // Small request/response exchanges are the norm; don't let Nagle delay them.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            })
            .await
    })
}
