//! Configuration: the TOML file model (closed: unknown keys are errors) and the validated
//! [`Config`]. Where a config comes from is [`source`]; the one validation step that turns the model
//! into a `Config` that cannot be invalid is `validate`.

mod capacity;
mod checks;
mod credentials;
mod env;
mod identity;
mod listen;
mod parse_error;
mod raw;
mod routes;
mod source;
mod tls;
mod validate;
mod validator;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

pub(crate) use checks::valid_tenant;
pub use identity::IdentityEndpoint;
pub(crate) use identity::resource_of;
pub(crate) use listen::DEFAULT_LISTEN;
pub use listen::Listen;
pub(crate) use source::EnvLookup;
pub use source::{ConfigSource, Env};

use raw::{FileRef, RawCloud, RawConfig, RawCredential, RawRoute, RawServer, RawTls};

use crate::access::Access;
use crate::cloud::{Api, Cloud};
use crate::credential::Credential;
use crate::ratelimit::RateLimit;
use crate::ratelimit::store::StoreConfig;
use crate::secret::Secret;
use crate::upstream::Upstream;
use validator::Validator;

/// How long to wait for a TCP (and TLS) connection to an upstream.
pub(crate) const DEFAULT_UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for an upstream's response headers. Advanced hunting queries may run for up to
/// 200 s (<https://learn.microsoft.com/en-us/defender-endpoint/api/run-advanced-query-api>),
/// so the default leaves room for them.
pub(crate) const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one token request to Entra may take.
pub(crate) const DEFAULT_TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests may run after a shutdown signal. Kubernetes sends SIGKILL 30 s after
/// SIGTERM by default; finishing first lets the process exit cleanly.
pub(crate) const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
/// How often the config file and the secret and certificate files it names are checked for
/// changes.
pub(crate) const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// Request bodies up to this size are buffered so that the request can be replayed once with a
/// fresh token after an upstream 401.
pub(crate) const DEFAULT_REPLAY_MAX_BODY_BYTES: usize = 1 << 20;
/// The most header bytes a request may send.
pub(crate) const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long a client may take to send a request's headers (slow clients, idle keep-alive).
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The most connections open at once.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// The most requests in flight at once (bodies included); more are answered 503 at once.
pub(crate) const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1_024;
/// The longest a request waits for a rate-limit slot before it is answered 429.
pub(crate) const DEFAULT_RATE_LIMIT_MAX_WAIT: Duration = Duration::from_secs(30);
/// The most requests waiting for a rate-limit slot per route.
pub(crate) const DEFAULT_RATE_LIMIT_MAX_QUEUE: usize = 256;
/// The longest any duration setting may be (one day): longer is a mistake, and a duration near
/// `u64::MAX` seconds overflows the clock arithmetic of timers and deadlines.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// The most connections, requests in flight or rate-limit waiters a setting may allow: what a tokio
/// semaphore can hold (`Semaphore::MAX_PERMITS`, `usize::MAX >> 3`; more panics).
pub(crate) const MAX_PERMITS: usize = tokio::sync::Semaphore::MAX_PERMITS;
/// The most header bytes `server.max_header_bytes` may allow (16 MiB): each connection may hold
/// that much.
pub(crate) const MAX_HEADER_BYTES: usize = 16 << 20;
/// The largest `server.replay_max_body_bytes` (256 MiB): each request in flight may buffer that
/// much.
pub(crate) const MAX_REPLAY_BODY_BYTES: usize = 256 << 20;
/// The largest `routes[].max_body_bytes` (1 TiB): bodies stream, so this only keeps the number sane.
pub(crate) const MAX_BODY_BYTES: u64 = 1 << 40;
/// The shortest inbound API key accepted: anything shorter can be guessed.
pub(crate) const MIN_API_KEY_LEN: usize = 16;
/// How long a request body may go without a byte from the client before the request fails with
/// 408 (a client that declares a length and goes quiet would hold its in-flight slot).
pub(crate) const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The most connections the admin listener holds open at once: probes and scrapes are few, and
/// its cap keeps it from using up the descriptors the main listener needs.
pub(crate) const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 64;

/// The most token requests in flight at once per Entra authority, process-wide (warm-up, refreshes
/// and clients waiting for a token together): a partner listing hundreds of tenants must not send
/// Entra hundreds of requests at once.
pub(crate) const DEFAULT_TOKEN_REQUEST_CONCURRENCY: usize = 16;
/// The largest `server.token_request_concurrency`: more at once is a burst Entra throttles.
pub(crate) const MAX_TOKEN_REQUEST_CONCURRENCY: usize = 256;

/// A configuration error; every one names where it comes from (the file, or "environment") and the
/// key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the config file", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this model (the message names the key and line).
    #[error("{origin}: {message}")]
    Parse {
        /// The file.
        origin: String,
        /// The parser's message, which quotes the offending key.
        message: String,
    },
    /// A value is not acceptable.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// The file, or "environment".
        origin: String,
        /// The key, such as `routes[1].upstream` or `credentials.app.tenant`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The validated configuration the proxy runs with.
#[derive(Debug)]
pub struct Config {
    /// Listener settings.
    pub server: Server,
    /// The cloud the presets are for.
    pub cloud: Cloud,
    /// The Entra authority host, such as `https://login.microsoftonline.com`.
    pub authority: Url,
    /// How long one token request may take.
    pub token_timeout: Duration,
    /// The credentials, by name.
    pub credentials: BTreeMap<String, Arc<Credential>>,
    /// The routes, in config order.
    pub routes: Vec<RouteConfig>,
    /// The separate admin listener (health, readiness, metrics and status only), if any.
    pub admin_listen: Option<SocketAddr>,
    /// The most connections the admin listener holds open at once (`admin.max_connections`).
    pub admin_max_connections: usize,
    /// Things worth a warning at start-up (such as a literal secret in the file).
    pub warnings: Vec<String>,
    /// Every file the config was read from (the config file, secret and certificate files), with
    /// its content as read: a change to any of them triggers a reload.
    pub files: Vec<WatchedFile>,
    /// Where the config came from, for reloading; `None` for a config built from text.
    pub source: Option<ConfigSource>,
    /// The managed-identity endpoint (`[identity_endpoint]`), off when `None`.
    pub identity_endpoint: Option<IdentityEndpoint>,
}

/// The prefix segment that names a partner's customer tenant.
pub(crate) const TENANT_PLACEHOLDER: &str = "{tenant}";

/// One validated route (`[[routes]]`): which path prefix goes to which upstream with which
/// credential and scope. What runs (its token keys and limiter) is built from it by `route`.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// The path prefix, such as `/mde` or `/customers/{tenant}/mde` (no trailing slash).
    pub prefix: String,
    /// The preset it was configured from, if any.
    pub api: Option<Api>,
    /// Where requests go.
    pub upstream: Upstream,
    /// The token scope.
    pub scope: Arc<str>,
    /// The credential tokens are obtained with.
    pub credential: Arc<Credential>,
    /// Whether `X-Tenant-Id` may name a partner's customer tenant.
    pub tenant_header: bool,
    /// The allow-lists, if any.
    pub access: Option<Access>,
    /// Whether absolute links to the upstreams in JSON bodies and `Location` are rewritten to the
    /// proxy. While on, the upstream is asked for gzip (replacing the client's `Accept-Encoding`)
    /// and gzipped JSON is decoded to be rewritten; while off, the client's `Accept-Encoding` is
    /// forwarded and bodies pass byte for byte.
    pub rewrite_links: bool,
    /// The largest request body accepted (413 beyond it), if limited.
    pub max_body_bytes: Option<u64>,
    /// The client-side rate limits and the family of budgets they draw on, if any.
    pub rate_limit: Option<RateLimit>,
}

/// A file the configuration was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedFile {
    /// Its path.
    pub path: PathBuf,
    /// [`content_fingerprint`](crate::digest::content_fingerprint) of its content when it was read (`None` if it could not be read).
    pub fingerprint: Option<u64>,
}

impl WatchedFile {
    /// Reads `path` now and records its fingerprint.
    pub fn read(path: PathBuf) -> Self {
        let fingerprint = crate::file::read(&path)
            .ok()
            .map(|c| crate::digest::content_fingerprint(&c));
        Self { path, fingerprint }
    }
}

/// Listener settings (`[server]`).
#[derive(Debug, Clone)]
pub struct Server {
    /// The address to listen on.
    pub listen: Listen,
    /// Whether a non-loopback `listen` is allowed.
    pub allow_remote: bool,
    /// How long to wait for a connection to an upstream.
    pub upstream_connect_timeout: Duration,
    /// How long to wait for an upstream's response headers.
    pub upstream_timeout: Duration,
    /// How long in-flight requests may run after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Inbound API keys; when any are set, every request but `/-/healthy` must present one.
    pub api_keys: Vec<Secret>,
    /// How often watched files are checked for changes.
    pub watch_interval: Duration,
    /// Request bodies up to this many bytes are buffered for a replay after an upstream 401.
    pub replay_max_body_bytes: usize,
    /// How long a request body may go without a byte from the client.
    pub body_read_timeout: Duration,
    /// Connection limits.
    pub limits: ConnectionLimits,
    /// The longest a request waits for a rate-limit slot.
    pub rate_limit_max_wait: Duration,
    /// The most requests waiting for a rate-limit slot per budget.
    pub rate_limit_max_queue: usize,
    /// The longest an upstream 429's Retry-After holds a budget.
    pub retry_after_max: Duration,
    /// The store that shares budgets between replicas, if any.
    pub rate_limit_store: Option<StoreConfig>,
    /// The most requests in flight at once.
    pub max_concurrent_requests: usize,
    /// The most token requests in flight at once per Entra authority.
    pub token_request_concurrency: usize,
    /// Inbound TLS, when configured (`[server.tls]`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Whether TLS requires client certificates (`server.tls.client_ca`).
    pub mutual_tls: bool,
    /// `Host` names accepted besides the loopback names (for a shared deployment's DNS name).
    pub allowed_hosts: Vec<String>,
    /// Browser origins whose requests are accepted (none by default).
    pub allowed_origins: Vec<String>,
}

/// Connection-level limits (`[server]`), enforced by the listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// The most header bytes a request may send (HTTP/1 answers 431 beyond it).
    pub max_header_bytes: usize,
    /// How long a client may take to send a request's headers, also on an idle keep-alive
    /// connection (slow clients and idle connections are closed).
    pub header_read_timeout: Duration,
    /// The most connections open at once; further ones are closed at once.
    pub max_connections: usize,
}

/// Command-line overrides applied before validation.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<Listen>,
}

impl Config {
    /// Parses and validates TOML text; `origin` names it in errors and relative paths are resolved
    /// against `base`. The result has no source, so it is never reloaded (the demo uses this).
    pub fn from_toml(
        text: &str,
        origin: &str,
        base: &Path,
        overrides: &Overrides,
        env: EnvLookup<'_>,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: parse_error::parse_message(text, &e),
        })?;
        Validator::new(origin, base, env).config(raw, overrides)
    }
}

#[cfg(test)]
mod capacity_tests;
#[cfg(test)]
mod credential_tests;
#[cfg(test)]
mod env_tests;
#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod identity_tests;
#[cfg(test)]
mod route_tests;
#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod tests;
