//! Routes: which path prefix goes to which upstream with which credential and scope, the lookup of a
//! request's route, and the upstream URI a request is forwarded to.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Uri};
use url::{Position, Url};

use crate::config::Api;
use crate::credential::{ClientAuth, Credential};
use crate::metrics::{Metrics, RouteMetrics};
use crate::ratelimit::{Limits, RateLimiter};
use crate::token::{AccessToken, TokenError, TokenKey};

/// No client-side limit (the limiter then only holds the route after an upstream 429).
const UNLIMITED: Limits = Limits {
    per_minute: None,
    per_hour: None,
};
/// The prefix segment that names a partner's customer tenant.
pub const TENANT_PLACEHOLDER: &str = "{tenant}";

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

/// A route's allow-lists (least privilege): a request passes when its method is in `methods`, or
/// when it matches one of the `paths` rules (`"[METHOD ]/path"`, with a trailing `*` for "and
/// below"). Paths are after the route prefix, without the query.
#[derive(Debug, Clone)]
pub struct Access {
    methods: Vec<Method>,
    paths: Vec<PathRule>,
}

#[derive(Debug, Clone)]
struct PathRule {
    method: Option<Method>,
    pattern: String,
    prefix: bool,
}

impl Access {
    /// The allow-lists from the config (`None` when neither is given: everything passes). Errors
    /// name the field (`methods` or `paths`) and say what is wrong.
    pub fn new(
        methods: Option<&[String]>,
        paths: Option<&[String]>,
    ) -> Result<Option<Self>, (&'static str, String)> {
        if methods.is_none() && paths.is_none() {
            return Ok(None);
        }
        let method = |text: &str| {
            Method::from_bytes(text.as_bytes())
                .ok()
                .filter(|_| text.chars().all(|c| c.is_ascii_uppercase()))
                .ok_or_else(|| format!("{text:?} is not an HTTP method such as GET or POST"))
        };
        let methods = methods
            .unwrap_or_default()
            .iter()
            .map(|m| method(m))
            .collect::<Result<_, _>>()
            .map_err(|e| ("methods", e))?;
        let paths = paths
            .unwrap_or_default()
            .iter()
            .map(|rule| {
                let (method, pattern) = match rule.split_once(' ') {
                    Some((m, p)) => (Some(method(m)?), p.trim()),
                    None => (None, rule.as_str()),
                };
                if !pattern.starts_with('/') || pattern[..pattern.len() - 1].contains('*') {
                    return Err(format!(
                        "{rule:?}: a rule is \"[METHOD ]/path\", the path starting with '/' and \
                         a '*' allowed only at its end"
                    ));
                }
                let prefix = pattern.ends_with('*');
                Ok(PathRule {
                    method,
                    pattern: pattern.trim_end_matches('*').to_owned(),
                    prefix,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| ("paths", e))?;
        Ok(Some(Self { methods, paths }))
    }

    /// Whether `method` on `path` (after the prefix, no query) passes.
    pub fn allows(&self, method: &Method, path: &str) -> bool {
        let path = if path.is_empty() { "/" } else { path };
        self.methods.contains(method)
            || self.paths.iter().any(|rule| {
                rule.method.as_ref().is_none_or(|m| m == method)
                    && if rule.prefix {
                        path.starts_with(&rule.pattern)
                    } else {
                        path == rule.pattern
                    }
            })
    }
}

/// Where a route's requests get their `Authorization` from.
#[derive(Debug)]
pub enum Tenancy {
    /// The one token of the credential's tenant.
    Fixed(TokenKey),
    /// A token in the customer tenant each request names (partner context): by the prefix's
    /// `{tenant}` segment or, when `header` is set, the `X-Tenant-Id` header.
    PerRequest {
        /// Whether `X-Tenant-Id` may name the tenant.
        header: bool,
    },
    /// A legacy API token, the same for every request.
    Static(Arc<AccessToken>),
}

/// One configured route.
#[derive(Debug)]
pub struct Route {
    /// The path prefix as configured, such as `/mde` or `/customers/{tenant}/mde` (no trailing
    /// slash).
    pub prefix: String,
    /// The prefix split at its `{tenant}` segment: (before, after); `after` is `None` without one.
    pattern: (String, Option<String>),
    /// The preset it was configured from, if any.
    pub api: Option<Api>,
    /// Where requests go.
    pub upstream: Upstream,
    /// The token scope.
    pub scope: Arc<str>,
    /// The credential tokens are obtained with.
    pub credential: Arc<Credential>,
    /// Where the `Authorization` comes from.
    pub tenancy: Tenancy,
    /// The allow-lists, if any.
    pub access: Option<Access>,
    /// Whether absolute links to the upstreams in JSON bodies and `Location` are rewritten to the
    /// proxy (and `Accept-Encoding` dropped so that bodies arrive uncompressed).
    pub rewrite_links: bool,
    /// The largest request body accepted (413 beyond it), if limited.
    pub max_body_bytes: Option<u64>,
    /// The client-side rate limits, if any.
    pub rate_limit: Option<Limits>,
    /// The limiter: the rate limits, and the hold after an upstream 429 (every route has one).
    pub limiter: RateLimiter,
    metrics: OnceLock<RouteMetrics>,
}

impl Route {
    /// Builds a route. A partner credential's tenant comes from each request (`tenant_header`
    /// allows `X-Tenant-Id`); a legacy API token is the same for every request; any other
    /// credential has one token per scope.
    pub fn new(
        prefix: String,
        api: Option<Api>,
        upstream: Upstream,
        scope: Arc<str>,
        credential: Arc<Credential>,
        tenant_header: bool,
    ) -> Result<Self, TokenError> {
        let tenancy = match &credential.auth {
            ClientAuth::ApiToken(key) => Tenancy::Static(Arc::new(AccessToken::api_token(key)?)),
            _ if credential.partner => Tenancy::PerRequest {
                header: tenant_header,
            },
            _ => Tenancy::Fixed(TokenKey::new(
                &credential,
                credential.home_tenant(),
                scope.clone(),
            )),
        };
        let pattern = match prefix.split_once(TENANT_PLACEHOLDER) {
            Some((before, after)) => (before.to_owned(), Some(after.to_owned())),
            None => (prefix.clone(), None),
        };
        Ok(Self {
            prefix,
            pattern,
            api,
            upstream,
            scope,
            credential,
            tenancy,
            access: None,
            rewrite_links: true,
            max_body_bytes: None,
            rate_limit: None,
            limiter: RateLimiter::new(UNLIMITED, Duration::ZERO, 0),
            metrics: OnceLock::new(),
        })
    }

    /// The token cache key for this route's token in `tenant` (one of the credential's).
    pub fn token_key(&self, tenant: Arc<str>) -> TokenKey {
        TokenKey::new(&self.credential, tenant, self.scope.clone())
    }

    /// Every token this route can use that the proxy can know in advance: its one token, or one per
    /// customer tenant of a partner credential.
    pub fn token_keys(&self) -> Vec<TokenKey> {
        match &self.tenancy {
            Tenancy::Fixed(key) => vec![key.clone()],
            Tenancy::PerRequest { .. } => self
                .credential
                .tenants
                .iter()
                .map(|t| self.token_key(t.clone()))
                .collect(),
            Tenancy::Static(_) => Vec::new(),
        }
    }

    /// Whether the prefix has a `{tenant}` segment.
    pub fn has_tenant_segment(&self) -> bool {
        self.pattern.1.is_some()
    }

    /// How much of `path` the prefix matches, and the `{tenant}` segment's value, if `path` is
    /// this route's prefix or below it (`/mde` matches `/mde` and `/mde/x`, not `/mdex`).
    pub fn split<'p>(&self, path: &'p str) -> Option<(usize, Option<&'p str>)> {
        let (before, after) = &self.pattern;
        let rest = path.strip_prefix(before.as_str())?;
        let (len, tenant, rest) = match after {
            None => (before.len(), None, rest),
            Some(after) => {
                let end = rest.find('/').unwrap_or(rest.len());
                let (tenant, rest) = rest.split_at(end);
                let rest = rest.strip_prefix(after.as_str())?;
                if tenant.is_empty() {
                    return None;
                }
                (
                    before.len() + tenant.len() + after.len(),
                    Some(tenant),
                    rest,
                )
            }
        };
        (rest.is_empty() || rest.starts_with('/')).then_some((len, tenant))
    }

    /// The prefix with `tenant` in its `{tenant}` segment, as clients address it.
    pub fn concrete_prefix(&self, tenant: Option<&str>) -> String {
        match (&self.pattern, tenant) {
            ((before, Some(after)), Some(tenant)) => format!("{before}{tenant}{after}"),
            _ => self.prefix.clone(),
        }
    }

    /// The route with its limiter: requests wait at most `max_wait`, `max_queue` at a time.
    pub fn with_limiter(mut self, max_wait: Duration, max_queue: usize) -> Self {
        self.limiter = RateLimiter::new(self.rate_limit.unwrap_or(UNLIMITED), max_wait, max_queue);
        self
    }

    /// The route with allow-lists.
    pub fn with_access(mut self, access: Option<Access>) -> Self {
        self.access = access;
        self
    }

    /// This route's metric handles, resolved on first use.
    pub fn metrics(&self, metrics: &Metrics) -> &RouteMetrics {
        self.metrics.get_or_init(|| metrics.route(&self.prefix))
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
        by_length.sort_by_key(|r| {
            std::cmp::Reverse(r.pattern.0.len() + r.pattern.1.as_ref().map_or(0, String::len))
        });
        Self {
            routes,
            by_length,
            prefixes,
        }
    }

    /// The route for a request path, if any, with the length of the path its prefix matched and
    /// the value of its `{tenant}` segment.
    pub fn find<'p>(&self, path: &'p str) -> Option<(&Arc<Route>, usize, Option<&'p str>)> {
        self.by_length
            .iter()
            .find_map(|r| r.split(path).map(|(len, tenant)| (r, len, tenant)))
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

    fn access(methods: &[&str], paths: &[&str]) -> Access {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (m, p) = (owned(methods), owned(paths));
        Access::new(
            (!m.is_empty()).then_some(&m[..]),
            (!p.is_empty()).then_some(&p[..]),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn a_read_only_route_allows_get_and_one_post() {
        let read_only = access(&["GET"], &["POST /api/advancedqueries/run"]);
        assert!(read_only.allows(&Method::GET, "/api/machines"));
        assert!(read_only.allows(&Method::POST, "/api/advancedqueries/run"));
        assert!(!read_only.allows(&Method::POST, "/api/machines/1/isolate"));
        assert!(!read_only.allows(&Method::POST, "/api/advancedqueries/run/x"));
        assert!(!read_only.allows(&Method::DELETE, "/api/indicators/1"));
    }

    #[test]
    fn path_rules_match_exactly_or_below_a_trailing_star() {
        let alerts = access(&[], &["GET /api/alerts*", "/api/info"]);
        assert!(alerts.allows(&Method::GET, "/api/alerts"));
        assert!(alerts.allows(&Method::GET, "/api/alerts/da123"));
        assert!(!alerts.allows(&Method::PATCH, "/api/alerts/da123"));
        assert!(alerts.allows(&Method::PUT, "/api/info"));
        assert!(!alerts.allows(&Method::GET, "/api/machines"));
    }

    #[test]
    fn bad_rules_are_refused_naming_the_field() {
        let rules = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Access::new(Some(&rules(&["get"])), None).unwrap_err().0,
            "methods"
        );
        assert_eq!(
            Access::new(None, Some(&rules(&["api/x"]))).unwrap_err().0,
            "paths"
        );
        assert_eq!(
            Access::new(None, Some(&rules(&["/a*/b"]))).unwrap_err().0,
            "paths"
        );
        assert!(Access::new(None, None).unwrap().is_none());
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
