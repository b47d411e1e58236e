//! The running proxy's shared state: what is built from a validated [`Config`] and replaced as a
//! whole on reload ([`Live`]), and what lives as long as the process ([`AppState`]: the token
//! cache, metrics, lifecycle). Building [`Live`] is the one place where configuration turns into
//! what runs; a reload carries over what its change left as it was.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::client::{self, UpstreamClient};
use crate::config::{Config, ConfigSource, WatchedFile};
use crate::credential::Credential;
use crate::metrics::{Metrics, RouteMetrics};
use crate::ratelimit::UNLIMITED;
use crate::ratelimit::budgets::{Budgets, Waiting};
use crate::ratelimit::store::Store;
use crate::rewrite::LinkTable;
use crate::route::Routes;
use crate::screen::Screen;
use crate::secret::Secret;
use crate::token::{EntraClient, TokenCache, TokenKey};
use crate::trust::Roots;

/// The route label of requests answered before a route was chosen (unknown prefix, refused
/// authentication).
const NO_ROUTE: &str = "-";

/// Everything that comes from the configuration and is replaced as a whole on reload.
pub(crate) struct Live {
    pub(crate) routes: Routes,
    /// The rate-limit budgets the routes draw on (and the store that shares them, if any).
    pub(crate) budgets: Budgets,
    /// The longest an upstream 429's Retry-After holds a budget.
    pub(crate) retry_after_max: Duration,
    pub(crate) credentials: BTreeMap<String, Arc<Credential>>,
    pub(crate) entra: EntraClient,
    /// The trusted roots `entra` and `client` share.
    roots: Roots,
    /// What `entra` was built with, so that a reload that keeps it keeps the client.
    token_timeout: Duration,
    pub(crate) client: UpstreamClient,
    /// What `client` was built with, so that a reload that keeps it keeps the connection pool.
    upstream_connect_timeout: Duration,
    pub(crate) upstream_timeout: Duration,
    pub(crate) replay_max_body_bytes: usize,
    /// How long a request body may go without a byte from its client.
    pub(crate) body_read_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) watch_interval: Duration,
    pub(crate) api_keys: Vec<Secret>,
    pub(crate) files: Vec<WatchedFile>,
    pub(crate) screen: Screen,
    /// The admin listener's screen (browser and `Host` checks only), if there is one.
    pub(crate) admin_screen: Option<Screen>,
    pub(crate) links: Arc<LinkTable>,
    /// Inbound TLS, rebuilt on reload so that a renewed certificate is used for new connections.
    pub(crate) tls: Option<TlsAcceptor>,
    /// The scheme clients reach the proxy with, for rewritten links.
    pub(crate) scheme: &'static str,
    /// Requests in flight (bodies included) are limited by this.
    pub(crate) in_flight: Arc<Semaphore>,
    max_concurrent_requests: usize,
    /// The managed-identity endpoint, when configured.
    pub(crate) identity: Option<crate::config::IdentityEndpoint>,
    /// Settings a reload cannot change (the listeners are bound once).
    pub(crate) restart_only: (crate::config::Listen, bool, Option<SocketAddr>),
}

impl Live {
    /// What runs for `config` with a main listener bound to `local` (and the admin listener to
    /// `admin`, if any). From `previous` (the running
    /// configuration, on reload) it keeps what the change left as it was: every budget (spent
    /// allowance and hold) whose family keeps its limits, the rate-limit store and its connection
    /// when its settings are unchanged, the in-flight count, the upstream connection pool and the
    /// Entra client.
    fn new(
        config: Config,
        (local, admin): (SocketAddr, Option<SocketAddr>),
        previous: Option<&Live>,
        (metrics, tokens): (&Arc<Metrics>, &TokenCache),
    ) -> io::Result<Self> {
        let speaks_tls = speaks_tls(&config);
        let server = config.server;
        let routes = Routes::with_tokens(config.routes, tokens).map_err(io::Error::other)?;
        let store = server.rate_limit_store.map(|settings| {
            previous
                .and_then(|live| live.budgets.store())
                .filter(|store| *store.config() == settings)
                .map(Arc::clone)
                .unwrap_or_else(|| {
                    let metrics = Arc::clone(metrics);
                    Store::start(settings, Box::new(move |up| metrics.rate_limit_store(up)))
                })
        });
        let budgets = Budgets::new(
            routes.iter().map(|r| {
                let limits = r.rate_limit.as_ref().map_or(UNLIMITED, |l| l.limits);
                (r.budget.name.clone(), limits)
            }),
            Waiting {
                max_wait: server.rate_limit_max_wait,
                max_queue: server.rate_limit_max_queue,
            },
            store,
            previous.map(|live| &live.budgets),
        );
        let tls = server.tls.map(TlsAcceptor::from);
        // Both clients share one copy of the trusted roots, read only when one of them makes a TLS
        // connection: now (off the runtime) if the configuration names an https authority or
        // upstream, else on a first handshake. A client kept from the previous configuration keeps
        // its roots, and a new one shares them; two new clients read the store afresh.
        let kept_entra = previous.filter(|live| live.token_timeout == config.token_timeout);
        let kept_client = previous
            .filter(|live| live.upstream_connect_timeout == server.upstream_connect_timeout);
        let roots = match kept_entra.or(kept_client) {
            Some(live) => live.roots.clone(),
            None => Roots::new(),
        };
        let entra = match kept_entra {
            Some(live) => live.entra.clone(),
            None => {
                EntraClient::with_roots(config.token_timeout, &roots).map_err(io::Error::other)?
            }
        };
        let client = match kept_client {
            Some(live) => live.client.clone(),
            None => client::upstream_client(server.upstream_connect_timeout, &roots)?,
        };
        if speaks_tls {
            roots.warm();
        }
        let in_flight = match previous {
            Some(live) if live.max_concurrent_requests == server.max_concurrent_requests => {
                Arc::clone(&live.in_flight)
            }
            _ => Arc::new(Semaphore::new(server.max_concurrent_requests)),
        };
        Ok(Self {
            scheme: if tls.is_some() { "https" } else { "http" },
            tls,
            in_flight,
            max_concurrent_requests: server.max_concurrent_requests,
            screen: Screen::new(local, &server.allowed_hosts, &server.allowed_origins),
            admin_screen: admin.map(|admin| {
                Screen::for_admin(admin, &server.allowed_hosts, &server.allowed_origins)
            }),
            restart_only: (server.listen, server.allow_remote, config.admin_listen),
            entra,
            roots,
            token_timeout: config.token_timeout,
            client,
            upstream_connect_timeout: server.upstream_connect_timeout,
            upstream_timeout: server.upstream_timeout,
            replay_max_body_bytes: server.replay_max_body_bytes,
            body_read_timeout: server.body_read_timeout,
            shutdown_grace: server.shutdown_grace,
            watch_interval: server.watch_interval,
            api_keys: server.api_keys,
            links: Arc::new(LinkTable::new(&routes)),
            routes,
            budgets,
            retry_after_max: server.retry_after_max,
            credentials: config.credentials,
            files: config.files,
            identity: config.identity_endpoint,
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
    /// The main and admin listeners' addresses (the screens accept them as `Host`).
    local: (SocketAddr, Option<SocketAddr>),
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
pub(crate) struct AppState(Arc<Shared>);

/// Whether the configuration names an endpoint reached over TLS: an https authority or upstream.
fn speaks_tls(config: &Config) -> bool {
    let https = |url: &str| url.starts_with("https:");
    https(config.authority.as_str())
        || config.credentials.values().any(|c| https(&c.authority))
        || config
            .routes
            .iter()
            .any(|r| https(r.upstream.url().as_str()))
}

impl AppState {
    /// Builds the state from a validated configuration, for a main listener bound to `local` and
    /// the admin listener, if any, to `admin`.
    pub(crate) fn new(
        config: Config,
        local: SocketAddr,
        admin: Option<SocketAddr>,
    ) -> io::Result<Self> {
        let local = (local, admin);
        let metrics = Arc::new(Metrics::default());
        let source = config.source.clone();
        let tokens = TokenCache::new(metrics.clone(), config.server.token_request_concurrency);
        let live = Live::new(config, local, None, (&metrics, &tokens))?;
        tokens.keep_pinned(live.routes.pinned());
        Ok(Self(Arc::new(Shared {
            live: ArcSwap::from_pointee(live),
            local,
            tokens,
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

    /// Marks the shutdown as begun.
    pub(crate) fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::Release);
    }

    /// Starts fetching every route's token, so that the first request does not wait for Entra:
    /// at the background priority of the token cache's bound on requests in flight, so that a
    /// partner's hundreds of tenants reach Entra a few at a time and clients go first.
    pub(crate) fn warm_up(&self) {
        let live = self.live();
        let needed = live
            .token_keys()
            .into_iter()
            .map(|needed| (needed.key, needed.credential))
            .collect();
        let (tokens, entra) = (self.tokens().clone(), live.entra.clone());
        // Failures are logged by the cache and reported by /-/ready; nothing more to do here.
        tokio::spawn(async move { tokens.warm_all(needed, &entra).await });
    }

    /// Swaps in a new configuration: tokens of credentials that changed or went are dropped, and
    /// the new routes' tokens are fetched. On error the running configuration stays.
    pub(crate) fn apply(&self, config: Config) -> io::Result<()> {
        let running = self.live();
        let token_request_concurrency = config.server.token_request_concurrency;
        let live = Live::new(
            config,
            self.0.local,
            Some(&running),
            (&self.0.metrics, self.tokens()),
        )?;
        if live.restart_only != running.restart_only {
            tracing::warn!(
                "server.listen, server.allow_remote and admin.listen take effect only after a restart"
            );
        }
        drop(running);
        let current: HashSet<(Arc<str>, u64)> = live
            .credentials
            .values()
            .map(|c| (c.name.clone(), c.fingerprint))
            .collect();
        // Pinned before the swap, so that the new routes' keys are never also looked up in moka.
        let unpinned = self.tokens().keep_pinned(live.routes.pinned());
        let dropped = unpinned
            + self
                .tokens()
                .retain(|key| current.contains(&(key.credential.clone(), key.fingerprint)));
        self.0.live.store(Arc::new(live));
        self.tokens()
            .set_request_concurrency(token_request_concurrency);
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

#[cfg(test)]
mod tests;
