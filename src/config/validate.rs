//! The one validation step: from the TOML model (or the environment mode's equivalent) to a
//! [`Config`] that cannot be invalid. Every error names its origin and key. Each route is checked
//! in `routes`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::checks::normalize_authority;
use super::credentials::Context;
use super::tls;
use super::validator::Validator;

use super::{
    Config, ConfigError, DEFAULT_ADMIN_MAX_CONNECTIONS, DEFAULT_BODY_READ_TIMEOUT,
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_LISTEN, DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADER_BYTES, DEFAULT_RATE_LIMIT_MAX_QUEUE,
    DEFAULT_RATE_LIMIT_MAX_WAIT, DEFAULT_REPLAY_MAX_BODY_BYTES, DEFAULT_SHUTDOWN_GRACE,
    DEFAULT_TOKEN_REQUEST_CONCURRENCY, DEFAULT_TOKEN_TIMEOUT, DEFAULT_UPSTREAM_CONNECT_TIMEOUT,
    DEFAULT_UPSTREAM_TIMEOUT, DEFAULT_WATCH_INTERVAL, MAX_DURATION, MAX_HEADER_BYTES, MAX_PERMITS,
    MAX_REPLAY_BODY_BYTES, MAX_TOKEN_REQUEST_CONCURRENCY, MIN_API_KEY_LEN, Overrides, RawConfig,
    RawServer, RouteConfig, Server,
};
use crate::ratelimit::UPSTREAM_RETRY_AFTER_MAX;
use crate::ratelimit::store::{self, StoreConfig, StoreUrl};

/// The longest `server.rate_limit_prefix`: a key prefix, not a place for data.
const MAX_STORE_PREFIX: usize = 64;

impl Validator<'_> {
    pub(super) fn config(
        mut self,
        raw: RawConfig,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let token_timeout = raw.server.token_timeout.unwrap_or(DEFAULT_TOKEN_TIMEOUT);
        let explicit_connections = raw.server.max_connections.is_some();
        let server = self.server(raw.server, overrides)?;
        let admin_max_connections = self.positive(
            "admin.max_connections",
            raw.admin.as_ref().and_then(|admin| admin.max_connections),
            DEFAULT_ADMIN_MAX_CONNECTIONS,
            MAX_PERMITS,
        )?;
        let server = self.descriptors(
            server,
            explicit_connections,
            admin_max_connections,
            &mut warnings,
        )?;
        let authority = match &raw.cloud.authority_host {
            Some(host) => self.url("cloud.authority_host", &normalize_authority(host))?,
            None => Url::parse(raw.cloud.name.authority_host()).expect("preset URLs are valid"),
        };
        let state_dir = match raw.state {
            Some(state) => Some(self.base.join(state.dir)),
            None => crate::state::default_dir(self.env),
        };
        let mut context = Context {
            authority: &authority,
            state_dir: state_dir.as_deref(),
            warnings: &mut warnings,
        };
        let mut credentials = BTreeMap::new();
        for (name, raw) in raw.credentials {
            let credential = self.credential(&name, raw, &mut context)?;
            credentials.insert(name, Arc::new(credential));
        }
        if raw.routes.is_empty() {
            return Err(self.invalid("routes", "at least one [[routes]] entry is required"));
        }
        let mut routes: Vec<RouteConfig> = Vec::with_capacity(raw.routes.len());
        for (i, route) in raw.routes.into_iter().enumerate() {
            let route = self.route(i, route, raw.cloud.name, &credentials)?;
            if let Some(limit) = &route.rate_limit
                && let Some(other) = routes
                    .iter()
                    .filter_map(|r| r.rate_limit.as_ref())
                    .find(|other| other.family == limit.family && other.limits != limit.limits)
            {
                return Err(self.invalid(
                    format!("routes[{i}].rate_limit"),
                    format!(
                        "budget {:?} is used by an earlier route with other limits ({:?} per minute, \
                         {:?} per hour): routes sharing a budget need the same limits",
                        limit.family.trim_start_matches("budget-"),
                        other.limits.per_minute,
                        other.limits.per_hour
                    ),
                ));
            }
            if routes.iter().any(|r| r.prefix == route.prefix) {
                return Err(self.invalid(
                    format!("routes[{i}].prefix"),
                    format!("prefix {} is used by an earlier route", route.prefix),
                ));
            }
            routes.push(route);
        }
        let identity_endpoint = raw
            .identity_endpoint
            .map(|raw| self.identity_endpoint(raw, &credentials, &routes))
            .transpose()?;
        Ok(Config {
            server,
            cloud: raw.cloud.name,
            authority,
            token_timeout,
            credentials,
            routes,
            admin_listen: raw.admin.map(|admin| admin.listen),
            admin_max_connections,
            warnings,
            files: self.files,
            source: None,
            identity_endpoint,
        })
    }

    fn server(&mut self, raw: RawServer, overrides: &Overrides) -> Result<Server, ConfigError> {
        let listen = overrides.listen.or(raw.listen).unwrap_or(DEFAULT_LISTEN);
        let (tls, mutual_tls) = match raw.tls {
            Some(tls) => {
                let mutual = tls.client_ca.is_some();
                (Some(tls::server_config(self, tls)?), mutual)
            }
            None => (None, false),
        };
        let mut api_keys = Vec::with_capacity(raw.api_keys.len());
        for (i, source) in raw.api_keys.into_iter().enumerate() {
            let key = format!("server.api_keys[{i}]");
            let secret = self.secret(&key, source)?;
            if secret.expose().chars().count() < MIN_API_KEY_LEN {
                return Err(self.invalid(
                    key,
                    format!("an API key needs at least {MIN_API_KEY_LEN} characters"),
                ));
            }
            api_keys.push(secret);
        }
        if !listen.is_loopback() {
            if !raw.allow_remote {
                return Err(self.invalid(
                    "server.listen",
                    format!(
                        "{listen} is not a loopback address: anything that can reach it could act \
                         with this app's Defender permissions; set server.allow_remote = true to \
                         allow it"
                    ),
                ));
            }
            if api_keys.is_empty() && !mutual_tls {
                return Err(self.invalid(
                    "server.api_keys",
                    format!(
                        "{listen} is not a loopback address, so clients must authenticate: give at \
                         least one API key, or require client certificates (server.tls.client_ca)"
                    ),
                ));
            }
        }
        for (key, value) in [
            (
                "server.upstream_connect_timeout",
                raw.upstream_connect_timeout,
            ),
            ("server.upstream_timeout", raw.upstream_timeout),
            ("server.token_timeout", raw.token_timeout),
            ("server.shutdown_grace", raw.shutdown_grace),
            ("server.watch_interval", raw.watch_interval),
            ("server.header_read_timeout", raw.header_read_timeout),
            ("server.body_read_timeout", raw.body_read_timeout),
            ("server.rate_limit_max_wait", raw.rate_limit_max_wait),
            ("server.retry_after_max", raw.retry_after_max),
        ] {
            if value == Some(Duration::ZERO) && key != "server.rate_limit_max_wait" {
                return Err(self.invalid(key, "must be more than zero"));
            }
            if value.is_some_and(|value| value > MAX_DURATION) {
                return Err(self.invalid(
                    key,
                    format!(
                        "must be at most {}",
                        humantime::format_duration(MAX_DURATION)
                    ),
                ));
            }
        }
        if raw
            .replay_max_body_bytes
            .is_some_and(|n| n > MAX_REPLAY_BODY_BYTES)
        {
            return Err(self.invalid(
                "server.replay_max_body_bytes",
                format!("must be at most {MAX_REPLAY_BODY_BYTES} (256 MiB)"),
            ));
        }
        let rate_limit_store = match raw.rate_limit_store {
            Some(source) => {
                let key = "server.rate_limit_store";
                let url = self.secret(key, source)?;
                let url = StoreUrl::parse(url).map_err(|m| self.invalid(key, m))?;
                let prefix = raw
                    .rate_limit_prefix
                    .unwrap_or_else(|| store::DEFAULT_PREFIX.to_owned());
                if prefix.len() > MAX_STORE_PREFIX
                    || prefix.contains(|c: char| c.is_whitespace() || c.is_control())
                {
                    return Err(self.invalid(
                        "server.rate_limit_prefix",
                        format!("at most {MAX_STORE_PREFIX} bytes, without spaces"),
                    ));
                }
                Some(StoreConfig { url, prefix })
            }
            None if raw.rate_limit_prefix.is_some() => {
                return Err(self.invalid(
                    "server.rate_limit_prefix",
                    "applies only with server.rate_limit_store",
                ));
            }
            None => None,
        };
        if raw.rate_limit_max_queue.is_some_and(|n| n > MAX_PERMITS) {
            return Err(self.invalid(
                "server.rate_limit_max_queue",
                format!("must be at most {MAX_PERMITS}"),
            ));
        }
        Ok(Server {
            listen,
            allow_remote: raw.allow_remote,
            upstream_connect_timeout: raw
                .upstream_connect_timeout
                .unwrap_or(DEFAULT_UPSTREAM_CONNECT_TIMEOUT),
            upstream_timeout: raw.upstream_timeout.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT),
            shutdown_grace: raw.shutdown_grace.unwrap_or(DEFAULT_SHUTDOWN_GRACE),
            api_keys,
            watch_interval: raw.watch_interval.unwrap_or(DEFAULT_WATCH_INTERVAL),
            replay_max_body_bytes: raw
                .replay_max_body_bytes
                .unwrap_or(DEFAULT_REPLAY_MAX_BODY_BYTES),
            body_read_timeout: raw.body_read_timeout.unwrap_or(DEFAULT_BODY_READ_TIMEOUT),
            limits: super::ConnectionLimits {
                max_header_bytes: self.positive(
                    "server.max_header_bytes",
                    raw.max_header_bytes,
                    DEFAULT_MAX_HEADER_BYTES,
                    MAX_HEADER_BYTES,
                )?,
                header_read_timeout: raw
                    .header_read_timeout
                    .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT),
                max_connections: self.positive(
                    "server.max_connections",
                    raw.max_connections,
                    DEFAULT_MAX_CONNECTIONS,
                    MAX_PERMITS,
                )?,
            },
            rate_limit_max_wait: raw
                .rate_limit_max_wait
                .unwrap_or(DEFAULT_RATE_LIMIT_MAX_WAIT),
            rate_limit_max_queue: raw
                .rate_limit_max_queue
                .unwrap_or(DEFAULT_RATE_LIMIT_MAX_QUEUE),
            retry_after_max: raw.retry_after_max.unwrap_or(UPSTREAM_RETRY_AFTER_MAX),
            rate_limit_store,
            max_concurrent_requests: self.positive(
                "server.max_concurrent_requests",
                raw.max_concurrent_requests,
                DEFAULT_MAX_CONCURRENT_REQUESTS,
                MAX_PERMITS,
            )?,
            token_request_concurrency: self.positive(
                "server.token_request_concurrency",
                raw.token_request_concurrency,
                DEFAULT_TOKEN_REQUEST_CONCURRENCY,
                MAX_TOKEN_REQUEST_CONCURRENCY,
            )?,
            tls,
            mutual_tls,
            allowed_hosts: self.hosts(raw.allowed_hosts)?,
            allowed_origins: self.origins(raw.allowed_origins)?,
        })
    }

    /// A count that must be more than zero and at most `max` (what the runtime can hold).
    pub(super) fn positive(
        &self,
        key: &str,
        value: Option<usize>,
        default: usize,
        max: usize,
    ) -> Result<usize, ConfigError> {
        match value {
            Some(0) => Err(self.invalid(key, "must be more than zero")),
            Some(value) if value > max => Err(self.invalid(key, format!("must be at most {max}"))),
            Some(value) => Ok(value),
            None => Ok(default),
        }
    }

    fn hosts(&self, hosts: Vec<String>) -> Result<Vec<String>, ConfigError> {
        for (i, host) in hosts.iter().enumerate() {
            let valid = http::uri::Authority::try_from(host.as_str())
                .is_ok_and(|a| a.as_str() == host && !host.contains('@'));
            if !valid {
                return Err(self.invalid(
                    format!("server.allowed_hosts[{i}]"),
                    format!("{host:?} is not a host name, with or without a port"),
                ));
            }
        }
        Ok(hosts)
    }

    fn origins(&self, origins: Vec<String>) -> Result<Vec<String>, ConfigError> {
        for (i, origin) in origins.iter().enumerate() {
            // An origin is scheme://host[:port], exactly as browsers send it (RFC 6454).
            let valid = Url::parse(origin).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.origin().ascii_serialization() == *origin
            });
            if !valid {
                return Err(self.invalid(
                    format!("server.allowed_origins[{i}]"),
                    format!(
                        "{origin:?} is not an origin such as \"https://tool.example\" (no path)"
                    ),
                ));
            }
        }
        Ok(origins)
    }
}
