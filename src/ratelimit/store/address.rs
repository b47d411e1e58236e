//! Where the store is: `server.rate_limit_store`, a URL that may hold a password, and the key
//! prefix.

use std::fmt;

use crate::secret::Secret;

/// `server.rate_limit_store`: a `redis://` or `rediss://` URL, which may hold a password, so it is
/// kept as a secret; what logs and `/-/status` show is [`StoreUrl::describe`].
#[derive(Clone)]
pub struct StoreUrl {
    pub(super) url: Secret,
    /// Scheme, host, port and database: no user or password.
    described: String,
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.described)
    }
}

impl PartialEq for StoreUrl {
    fn eq(&self, other: &Self) -> bool {
        self.url.expose() == other.url.expose()
    }
}

impl StoreUrl {
    /// Checks `url`: `redis://HOST[:PORT][/DB]` or `rediss://…` (TLS, rustls), optionally with
    /// `user:password@`. The message of an error never holds the URL.
    pub(crate) fn parse(url: Secret) -> Result<Self, String> {
        let parsed = ::url::Url::parse(url.expose())
            .map_err(|e| format!("not a URL ({e}); give redis://HOST:PORT[/DB] or rediss://…"))?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err("the scheme must be redis:// or rediss:// (TLS)".to_owned());
        }
        let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
            return Err("the URL needs a host: redis://HOST:PORT[/DB]".to_owned());
        };
        let db = parsed.path().trim_start_matches('/');
        if !db.is_empty() && db.parse::<u16>().is_err() {
            return Err("the path must be a database number, such as /0".to_owned());
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err("the URL takes no query or fragment".to_owned());
        }
        redis::Client::open(url.expose())
            .map_err(|_| "the redis client does not accept this URL".to_owned())?;
        let port = parsed.port().unwrap_or(6379);
        let described = format!(
            "{}://{host}:{port}/{}",
            parsed.scheme(),
            db.parse().unwrap_or(0)
        );
        Ok(Self { url, described })
    }

    /// The URL without user and password, for logs and status.
    pub(crate) fn describe(&self) -> &str {
        &self.described
    }
}

/// The store's settings: where it is and the prefix of its keys.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Where the store is.
    pub url: StoreUrl,
    /// What every key starts with.
    pub prefix: String,
}
