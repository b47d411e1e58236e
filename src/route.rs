//! Routes: which path prefix goes to which upstream with which credential and scope, the lookup of a
//! request's route, and the upstream URI a request is forwarded to.

use std::sync::{Arc, OnceLock};

use http::Uri;
use http::uri::{Authority, PathAndQuery, Scheme};
use url::{Position, Url};

use crate::config::Api;
use crate::credential::Credential;
use crate::metrics::{Metrics, RouteMetrics};
use crate::token::TokenKey;

/// An upstream base URL, split once at start-up into the parts each forwarded request reuses.
#[derive(Debug, Clone)]
pub struct Upstream {
    url: Url,
    scheme: Scheme,
    authority: Authority,
    base_path: String,
}

impl Upstream {
    /// Splits a validated URL (scheme, host, optional port, optional base path).
    pub fn new(url: Url) -> Result<Self, String> {
        let scheme = Scheme::try_from(url.scheme()).map_err(|e| e.to_string())?;
        let authority = Authority::try_from(&url[Position::BeforeHost..Position::AfterPort])
            .map_err(|e| format!("bad host: {e}"))?;
        let base_path = url.path().trim_end_matches('/').to_owned();
        Ok(Self {
            url,
            scheme,
            authority,
            base_path,
        })
    }

    /// The upstream base URL as configured.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URI for `rest`, the part of the request target after the route prefix: it starts with
    /// `/` or `?`, or is empty, and is appended byte for byte.
    pub fn uri_for(&self, rest: &str) -> Result<Uri, http::Error> {
        let mut target = String::with_capacity(self.base_path.len() + rest.len() + 1);
        target.push_str(&self.base_path);
        if rest.is_empty() || rest.starts_with('?') {
            target.push('/');
        }
        target.push_str(rest);
        Ok(Uri::from_parts({
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(self.scheme.clone());
            parts.authority = Some(self.authority.clone());
            parts.path_and_query = Some(PathAndQuery::try_from(target)?);
            parts
        })?)
    }
}

/// One configured route.
#[derive(Debug)]
pub struct Route {
    /// The path prefix, such as `/mde` (no trailing slash).
    pub prefix: String,
    /// The preset it was configured from, if any.
    pub api: Option<Api>,
    /// Where requests go.
    pub upstream: Upstream,
    /// The token scope.
    pub scope: Arc<str>,
    /// The credential tokens are obtained with.
    pub credential: Arc<Credential>,
    /// The token cache key for this route's tokens.
    pub token_key: TokenKey,
    metrics: OnceLock<RouteMetrics>,
}

impl Route {
    /// Builds a route; the token key follows from the credential, its tenant and the scope.
    pub fn new(
        prefix: String,
        api: Option<Api>,
        upstream: Upstream,
        scope: Arc<str>,
        credential: Arc<Credential>,
    ) -> Self {
        let token_key = TokenKey::new(&credential, credential.tenant.clone(), scope.clone());
        Self {
            prefix,
            api,
            upstream,
            scope,
            credential,
            token_key,
            metrics: OnceLock::new(),
        }
    }

    /// This route's metric handles, resolved on first use.
    pub fn metrics(&self, metrics: &Metrics) -> &RouteMetrics {
        self.metrics.get_or_init(|| metrics.route(&self.prefix))
    }

    /// Whether `path` is this route's prefix or below it (`/mde` matches `/mde` and `/mde/x`, not
    /// `/mdex`).
    fn matches(&self, path: &str) -> bool {
        path.strip_prefix(&self.prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// The route table.
#[derive(Debug)]
pub struct Routes {
    /// Config order, for listings.
    routes: Vec<Arc<Route>>,
    /// Longest prefix first, so that `/a/b` wins over `/a`.
    by_length: Vec<Arc<Route>>,
    /// The prefixes in config order.
    prefixes: Vec<String>,
}

impl Routes {
    /// Builds the table.
    pub fn new(routes: Vec<Route>) -> Self {
        let routes: Vec<Arc<Route>> = routes.into_iter().map(Arc::new).collect();
        let prefixes = routes.iter().map(|r| r.prefix.clone()).collect();
        let mut by_length = routes.clone();
        by_length.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Self {
            routes,
            by_length,
            prefixes,
        }
    }

    /// The route for a request path, if any.
    pub fn find(&self, path: &str) -> Option<&Arc<Route>> {
        self.by_length.iter().find(|r| r.matches(path))
    }

    /// Every route, in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.iter()
    }

    /// The configured prefixes in config order.
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(url: &str) -> Upstream {
        Upstream::new(Url::parse(url).unwrap()).unwrap()
    }

    #[test]
    fn upstream_uri_appends_the_rest_byte_for_byte() {
        let up = upstream("https://api.securitycenter.microsoft.com");
        assert_eq!(
            up.uri_for("/api/alerts?$top=5&$filter=severity%20eq%20'High'")
                .unwrap(),
            "https://api.securitycenter.microsoft.com/api/alerts?$top=5&$filter=severity%20eq%20'High'"
        );
        assert_eq!(
            up.uri_for("").unwrap(),
            "https://api.securitycenter.microsoft.com/"
        );
        assert_eq!(
            up.uri_for("?a=1").unwrap(),
            "https://api.securitycenter.microsoft.com/?a=1"
        );
    }

    #[test]
    fn upstream_uri_keeps_a_base_path_and_port() {
        let up = upstream("http://127.0.0.1:9000/base/");
        assert_eq!(up.uri_for("/x").unwrap(), "http://127.0.0.1:9000/base/x");
        assert_eq!(up.uri_for("").unwrap(), "http://127.0.0.1:9000/base/");
        assert_eq!(up.uri_for("?q").unwrap(), "http://127.0.0.1:9000/base/?q");
        let v6 = upstream("http://[::1]:9000");
        assert_eq!(v6.uri_for("/x").unwrap(), "http://[::1]:9000/x");
    }
}
