//! Configuration: the TOML file model (closed: unknown keys are errors), the environment-only mode,
//! and the one validation step that turns either into a [`Config`] that cannot be invalid.

mod cloud;
mod env;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

pub use cloud::{Api, Cloud};
pub use env::{EnvLookup, from_env};

use crate::credential::{AssertionAlgorithm, Certificate, ClientAuth, Credential};
use crate::route::{Route, Upstream};
use crate::secret::SecretSource;

/// Where the proxy listens unless told otherwise.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// How long to wait for a TCP (and TLS) connection to an upstream.
pub const DEFAULT_UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for an upstream's response headers. Advanced hunting queries may run for up to
/// 200 s (protocol.md 7.1), so the default leaves room for them.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one token request to Entra may take.
pub const DEFAULT_TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// The Entra authority host, such as `https://login.microsoftonline.com`.
    pub authority: Url,
    /// How long one token request may take.
    pub token_timeout: Duration,
    /// The credentials, by name.
    pub credentials: BTreeMap<String, Arc<Credential>>,
    /// The routes, in config order.
    pub routes: Vec<Route>,
    /// Things worth a warning at start-up (such as a literal secret in the file).
    pub warnings: Vec<String>,
}

/// Listener settings (`[server]`).
#[derive(Debug, Clone)]
pub struct Server {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Whether a non-loopback `listen` is allowed.
    pub allow_remote: bool,
    /// How long to wait for a connection to an upstream.
    pub upstream_connect_timeout: Duration,
    /// How long to wait for an upstream's response headers.
    pub upstream_timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    cloud: RawCloud,
    #[serde(default)]
    credentials: BTreeMap<String, RawCredential>,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<SocketAddr>,
    #[serde(default)]
    allow_remote: bool,
    #[serde(default, with = "humantime_serde")]
    upstream_connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    upstream_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    token_timeout: Option<Duration>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCloud {
    #[serde(default)]
    name: Cloud,
    authority_host: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RawCredential {
    ClientSecret {
        tenant: String,
        client_id: String,
        client_secret: SecretSource,
    },
    ClientCertificate {
        tenant: String,
        client_id: String,
        certificate: FileRef,
        #[serde(default)]
        algorithm: AssertionAlgorithm,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRef {
    file: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    api: Option<Api>,
    credential: String,
    upstream: Option<String>,
    scope: Option<String>,
}

/// Command-line overrides applied before validation.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
}

impl Config {
    /// Reads and validates a config file. Relative file paths in it are resolved against the file's
    /// directory; environment variables are looked up through `env`.
    pub fn load(
        path: &Path,
        overrides: &Overrides,
        env: EnvLookup<'_>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, &path.display().to_string(), base, overrides, env)
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn from_toml(
        text: &str,
        origin: &str,
        base: &Path,
        overrides: &Overrides,
        env: EnvLookup<'_>,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Validator { origin, base, env }.config(raw, overrides)
    }
}

struct Validator<'a> {
    origin: &'a str,
    base: &'a Path,
    env: EnvLookup<'a>,
}

impl Validator<'_> {
    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn config(&self, raw: RawConfig, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let token_timeout = raw.server.token_timeout.unwrap_or(DEFAULT_TOKEN_TIMEOUT);
        let server = self.server(raw.server, overrides)?;
        let authority = match &raw.cloud.authority_host {
            Some(host) => self.url("cloud.authority_host", &normalize_authority(host))?,
            None => Url::parse(raw.cloud.name.authority_host()).expect("preset URLs are valid"),
        };
        let mut credentials = BTreeMap::new();
        for (name, raw) in raw.credentials {
            let credential = self.credential(&name, raw, &mut warnings)?;
            credentials.insert(name, Arc::new(credential));
        }
        if raw.routes.is_empty() {
            return Err(self.invalid("routes", "at least one [[routes]] entry is required"));
        }
        let mut routes: Vec<Route> = Vec::with_capacity(raw.routes.len());
        for (i, route) in raw.routes.into_iter().enumerate() {
            let route = self.route(i, route, raw.cloud.name, &credentials)?;
            if routes.iter().any(|r| r.prefix == route.prefix) {
                return Err(self.invalid(
                    format!("routes[{i}].prefix"),
                    format!("prefix {} is used by an earlier route", route.prefix),
                ));
            }
            routes.push(route);
        }
        Ok(Config {
            server,
            authority,
            token_timeout,
            credentials,
            routes,
            warnings,
        })
    }

    fn server(&self, raw: RawServer, overrides: &Overrides) -> Result<Server, ConfigError> {
        let listen = overrides.listen.or(raw.listen).unwrap_or(DEFAULT_LISTEN);
        if !listen.ip().is_loopback() && !raw.allow_remote {
            return Err(self.invalid(
                "server.listen",
                format!(
                    "{listen} is not a loopback address: anything that can reach it could act with \
                     this app's Defender permissions; set server.allow_remote = true to allow it"
                ),
            ));
        }
        for (key, value) in [
            (
                "server.upstream_connect_timeout",
                raw.upstream_connect_timeout,
            ),
            ("server.upstream_timeout", raw.upstream_timeout),
            ("server.token_timeout", raw.token_timeout),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(self.invalid(key, "must be more than zero"));
            }
        }
        Ok(Server {
            listen,
            allow_remote: raw.allow_remote,
            upstream_connect_timeout: raw
                .upstream_connect_timeout
                .unwrap_or(DEFAULT_UPSTREAM_CONNECT_TIMEOUT),
            upstream_timeout: raw.upstream_timeout.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT),
        })
    }

    fn credential(
        &self,
        name: &str,
        raw: RawCredential,
        warnings: &mut Vec<String>,
    ) -> Result<Credential, ConfigError> {
        let key = |field: &str| format!("credentials.{name}.{field}");
        if !is_name(name) {
            return Err(self.invalid(
                format!("credentials.{name}"),
                "a credential name uses only letters, digits, '-' and '_'",
            ));
        }
        let (tenant, client_id, auth) = match raw {
            RawCredential::ClientSecret {
                tenant,
                client_id,
                client_secret,
            } => {
                if matches!(client_secret, SecretSource::Literal(_)) {
                    warnings.push(format!(
                        "{}: {}: the secret is written in the config file; prefer {{ env = \"...\" }} \
                         or {{ file = \"...\" }}",
                        self.origin,
                        key("client_secret")
                    ));
                }
                let secret = client_secret
                    .relative_to(self.base)
                    .load(self.env)
                    .map_err(|e| self.invalid(key("client_secret"), error_chain(&e)))?;
                (tenant, client_id, ClientAuth::Secret(secret))
            }
            RawCredential::ClientCertificate {
                tenant,
                client_id,
                certificate,
                algorithm,
            } => {
                let path = self.base.join(certificate.file);
                let pem = std::fs::read(&path).map_err(|e| {
                    self.invalid(
                        key("certificate"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let cert = Certificate::from_pem(&pem, algorithm).map_err(|e| {
                    self.invalid(
                        key("certificate"),
                        format!("{}: {}", path.display(), error_chain(&e)),
                    )
                })?;
                (tenant, client_id, ClientAuth::Certificate(cert))
            }
        };
        check_tenant(&tenant).map_err(|m| self.invalid(key("tenant"), m))?;
        if uuid::Uuid::parse_str(&client_id).is_err() {
            return Err(self.invalid(
                key("client_id"),
                format!(
                    "{client_id:?} is not a GUID: use the Application (client) ID from the app \
                     registration's overview page"
                ),
            ));
        }
        Ok(Credential {
            name: name.into(),
            tenant: tenant.into(),
            client_id,
            auth,
        })
    }

    fn route(
        &self,
        i: usize,
        raw: RawRoute,
        cloud: Cloud,
        credentials: &BTreeMap<String, Arc<Credential>>,
    ) -> Result<Route, ConfigError> {
        let key = |field: &str| format!("routes[{i}].{field}");
        let prefix = raw.prefix.trim_end_matches('/').to_owned();
        check_prefix(&prefix).map_err(|m| self.invalid(key("prefix"), m))?;
        let credential = credentials.get(&raw.credential).cloned().ok_or_else(|| {
            let known: Vec<&str> = credentials.keys().map(String::as_str).collect();
            self.invalid(
                key("credential"),
                format!(
                    "no credential named {:?} (defined: {})",
                    raw.credential,
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })?;
        let upstream = match (&raw.upstream, raw.api) {
            (Some(url), _) => url.clone(),
            (None, Some(api)) => cloud.upstream(api).map(str::to_owned).ok_or_else(|| {
                self.invalid(
                    key("upstream"),
                    "api = \"mdca\" needs the tenant's API URL, such as \
                     \"https://contoso.us2.portal.cloudappsecurity.com\" (Defender portal: Settings, \
                     Cloud Apps, About)",
                )
            })?,
            (None, None) => {
                return Err(self.invalid(key("upstream"), "give `api` (a preset) or `upstream`"));
            }
        };
        let upstream = Upstream::new(self.url(key("upstream"), &upstream)?)
            .map_err(|m| self.invalid(key("upstream"), m))?;
        let scope = match (raw.scope, raw.api) {
            (Some(scope), _) => scope,
            (None, Some(api)) => cloud.scope(api),
            (None, None) => {
                return Err(self.invalid(key("scope"), "give `api` (a preset) or `scope`"));
            }
        };
        if scope.trim().is_empty() || scope.contains(char::is_whitespace) {
            return Err(self.invalid(
                key("scope"),
                "one scope, such as \"https://api.securitycenter.microsoft.com/.default\"",
            ));
        }
        Ok(Route::new(
            prefix,
            raw.api,
            upstream,
            scope.into(),
            credential,
        ))
    }

    /// Parses a URL that the proxy will send a token or a secret to: `https`, or `http` for loopback
    /// hosts only (local testing), and nothing but scheme, host, port and path.
    fn url(&self, key: impl Into<String>, value: &str) -> Result<Url, ConfigError> {
        let key = key.into();
        let url = Url::parse(value).map_err(|e| self.invalid(&key, format!("{value:?}: {e}")))?;
        check_url(&url).map_err(|m| self.invalid(&key, format!("{value:?}: {m}")))?;
        Ok(url)
    }
}

/// Accepts `login.microsoftonline.us`, `https://login.microsoftonline.us/` and the like, as
/// azure-identity does for AZURE_AUTHORITY_HOST (protocol.md 5.1).
fn normalize_authority(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    if host.contains("://") {
        host.to_owned()
    } else {
        format!("https://{host}")
    }
}

fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(url) => {}
        "http" => {
            return Err(
                "http:// is allowed only for loopback hosts (local testing); use https://".into(),
            );
        }
        other => return Err(format!("unsupported scheme {other:?}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a query or fragment is not allowed here".into());
    }
    Ok(())
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A tenant is a GUID or a domain name (protocol.md 4.4); the multi-tenant aliases make no sense for
/// the client credentials grant.
fn check_tenant(tenant: &str) -> Result<(), String> {
    if uuid::Uuid::parse_str(tenant).is_ok() {
        return Ok(());
    }
    if matches!(
        tenant.to_ascii_lowercase().as_str(),
        "common" | "organizations" | "consumers"
    ) {
        return Err(format!(
            "{tenant:?} cannot be used with the client credentials grant: give the tenant ID (a GUID) \
             or its domain, such as contoso.onmicrosoft.com"
        ));
    }
    let valid_domain = tenant.contains('.')
        && tenant.len() <= 253
        && tenant.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid_domain {
        Ok(())
    } else {
        Err(format!(
            "{tenant:?} is neither a GUID nor a domain name such as contoso.onmicrosoft.com"
        ))
    }
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') || prefix.len() < 2 {
        return Err(format!(
            "{prefix:?}: a prefix starts with '/' and names at least one path segment, such as \"/mde\""
        ));
    }
    if prefix.starts_with("/-") {
        return Err(format!(
            "{prefix:?}: prefixes starting with \"/-\" are reserved for the proxy's own endpoints"
        ));
    }
    let segments_ok = prefix[1..].split('/').all(|s| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    });
    if segments_ok {
        Ok(())
    } else {
        Err(format!(
            "{prefix:?}: segments use only letters, digits and - . _ ~"
        ))
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An error and its causes on one line, for messages that go to a person.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests;
