//! Routes as they run: each configured route with its token source (a fixed key's slot held by
//! the route) and the family of budgets it draws on, the lookup of a request's route, and which
//! token (and so which budget) a request uses.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use http::HeaderName;

use crate::access::Access;
use crate::cloud::Api;
use crate::config::{RouteConfig, TENANT_PLACEHOLDER};
use crate::credential::{ClientAuth, Credential};
use crate::metrics::{Metrics, RouteMetrics};
use crate::ratelimit::RateLimit;
use crate::ratelimit::budgets::{Budget, BudgetFamily, Budgets};
use crate::token::{AccessToken, PinnedSlot, TokenCache, TokenError, TokenKey};
use crate::upstream::Upstream;

mod source;

pub(crate) use source::Source;

/// The request header that names a partner's customer tenant on routes with `tenant_header`; it is
/// never forwarded.
pub(crate) const TENANT_HEADER: HeaderName = HeaderName::from_static("x-tenant-id");
/// Where a route's requests get their `Authorization` from.
#[derive(Debug)]
pub(crate) enum Tenancy {
    /// The one token of the credential's tenant.
    Fixed {
        /// Its key.
        key: TokenKey,
        /// Its slot in the token cache, held here so that a request needs no lookup; `None` for
        /// a user credential (see [`Tenancy::pin`]) and for routes built without a cache.
        slot: Option<PinnedSlot>,
    },
    /// A token in the customer tenant each request names (partner context): by the prefix's
    /// `{tenant}` segment or, when `header` is set, the `X-Tenant-Id` header.
    PerRequest {
        /// Whether `X-Tenant-Id` may name the tenant.
        header: bool,
    },
    /// A legacy API token, the same for every request.
    Static(Arc<AccessToken>),
}

impl Tenancy {
    /// Where the requests of a route with `credential`, `scope` and `tenant_header` get their
    /// `Authorization` from. Fails only for an API token a header cannot carry.
    pub(crate) fn new(
        credential: &Credential,
        scope: &Arc<str>,
        tenant_header: bool,
    ) -> Result<Self, TokenError> {
        Ok(match &credential.auth {
            ClientAuth::ApiToken(key) => Self::Static(Arc::new(AccessToken::api_token(key)?)),
            _ if credential.partner => Self::PerRequest {
                header: tenant_header,
            },
            _ => Self::Fixed {
                key: TokenKey::new(credential, credential.home_tenant(), scope.clone()),
                slot: None,
            },
        })
    }

    /// Takes a fixed key's slot from `slot_of`, except a user credential's: its token comes and
    /// goes with a sign-in (`login`, `logout`), so it stays in the cache's evicting part.
    fn pin(&mut self, credential: &Credential, slot_of: impl FnOnce(&TokenKey) -> PinnedSlot) {
        let user = matches!(
            credential.auth,
            ClientAuth::User(_) | ClientAuth::Password { .. }
        );
        if let Self::Fixed { key, slot } = self
            && !user
        {
            *slot = Some(slot_of(key));
        }
    }

    /// Every token a route with this tenancy can use that the proxy can know in advance: its one
    /// token, or one per customer tenant of a partner credential.
    pub(crate) fn token_keys(&self, credential: &Credential, scope: &Arc<str>) -> Vec<TokenKey> {
        match self {
            Self::Fixed { key, .. } => vec![key.clone()],
            Self::PerRequest { .. } => credential
                .tenants
                .iter()
                .map(|t| TokenKey::new(credential, t.clone(), scope.clone()))
                .collect(),
            Self::Static(_) => Vec::new(),
        }
    }
}

/// One route as it runs: its configuration, where its tokens come from, and its limiter.
#[derive(Debug)]
pub struct Route {
    /// The path prefix as configured, such as `/mde` or `/customers/{tenant}/mde` (no trailing
    /// slash).
    pub prefix: String,
    /// The prefix split at its `{tenant}` segment: (before, after); `after` is `None` without one.
    pattern: (String, Option<String>),
    /// The preset it was configured from, if any.
    pub(crate) api: Option<Api>,
    /// Where requests go.
    pub upstream: Upstream,
    /// The token scope.
    pub(crate) scope: Arc<str>,
    /// The credential tokens are obtained with.
    pub(crate) credential: Arc<Credential>,
    /// Where the `Authorization` comes from.
    pub(crate) tenancy: Tenancy,
    /// The allow-lists, if any.
    pub(crate) access: Option<Access>,
    /// Whether absolute links to the upstreams in JSON bodies and `Location` are rewritten to the
    /// proxy. While on, the upstream is asked for gzip (replacing the client's `Accept-Encoding`)
    /// and gzipped JSON is decoded to be rewritten; while off, the client's `Accept-Encoding` is
    /// forwarded and bodies pass byte for byte.
    pub(crate) rewrite_links: bool,
    /// The largest request body accepted (413 beyond it), if limited.
    pub(crate) max_body_bytes: Option<u64>,
    /// The family of budgets its requests draw on (one budget per tenant): the rate limits, and
    /// the hold after an upstream 429 (every route has one, limited or not).
    pub(crate) budget: BudgetFamily,
    /// Its limits, if any.
    pub(crate) rate_limit: Option<RateLimit>,
    metrics: OnceLock<RouteMetrics>,
    /// Its one budget, for a route with one tenant: looked up on the first request, then held
    /// (the budgets never drop one, and a route lives no longer than the budgets it was built with).
    held_budget: OnceLock<Arc<Budget>>,
}

impl Route {
    /// Builds the route `config` describes. A partner credential's tenant comes from each request
    /// (`tenant_header` allows `X-Tenant-Id`); a legacy API token is the same for every request;
    /// any other credential has one token per scope. Fails only for an API token a header cannot
    /// carry, which validation refuses first.
    pub(crate) fn new(config: RouteConfig) -> Result<Self, TokenError> {
        let RouteConfig {
            prefix,
            api,
            upstream,
            scope,
            credential,
            tenant_header,
            access,
            rewrite_links,
            max_body_bytes,
            rate_limit,
        } = config;
        let tenancy = Tenancy::new(&credential, &scope, tenant_header)?;
        // The app Microsoft counts is the client id; a legacy API token has none, so its
        // credential stands for it.
        let app: Arc<str> = match &tenancy {
            Tenancy::Static(_) => credential.name.clone(),
            _ => credential.client_id.as_str().into(),
        };
        let budget = match &rate_limit {
            Some(limit) => BudgetFamily {
                name: limit.family.clone(),
                app: (!limit.per_tenant).then_some(app),
            },
            // No limits: a budget of the route's own, which only holds after an upstream 429.
            None => BudgetFamily {
                name: format!("route:{prefix}").into(),
                app: Some(app),
            },
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
            access,
            rewrite_links,
            max_body_bytes,
            budget,
            rate_limit,
            metrics: OnceLock::new(),
            held_budget: OnceLock::new(),
        })
    }

    /// The budget in `budgets` that a request with `source` draws on; held after the first for a
    /// route with one tenant, so that its requests skip the lookup.
    pub(crate) fn budget_in(&self, budgets: &Budgets, source: &Source<'_>) -> Arc<Budget> {
        let lookup = || budgets.get(&self.budget, &self.budget_tenant(source));
        match self.tenancy {
            Tenancy::Fixed { .. } | Tenancy::Static(_) => {
                Arc::clone(self.held_budget.get_or_init(lookup))
            }
            Tenancy::PerRequest { .. } => lookup(),
        }
    }

    /// The tenant whose budget a request with `source` draws on: its token's, or for a legacy API
    /// token (one tenant's Cloud Apps portal) the upstream's host.
    fn budget_tenant(&self, source: &Source<'_>) -> Arc<str> {
        match source {
            Source::Cache(key) => key.tenant.clone(),
            Source::Static(_) => self.upstream.url().host_str().unwrap_or_default().into(),
        }
    }

    /// The token cache key for this route's token in `tenant` (one of the credential's).
    pub(crate) fn token_key(&self, tenant: Arc<str>) -> TokenKey {
        TokenKey::new(&self.credential, tenant, self.scope.clone())
    }

    /// Every token this route can use that the proxy can know in advance: its one token, or one per
    /// customer tenant of a partner credential.
    pub fn token_keys(&self) -> Vec<TokenKey> {
        self.tenancy.token_keys(&self.credential, &self.scope)
    }

    /// Whether the prefix has a `{tenant}` segment.
    pub(crate) fn has_tenant_segment(&self) -> bool {
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
    pub(crate) fn concrete_prefix(&self, tenant: Option<&str>) -> String {
        match (&self.pattern, tenant) {
            ((before, Some(after)), Some(tenant)) => format!("{before}{tenant}{after}"),
            _ => self.prefix.clone(),
        }
    }

    /// This route's metric handles, resolved on first use.
    pub(crate) fn metrics(&self, metrics: &Metrics) -> &RouteMetrics {
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
    /// The table of the routes `routes` describe, finding every token by its key.
    pub fn new(routes: Vec<RouteConfig>) -> Result<Self, TokenError> {
        Self::build(routes, None)
    }

    /// The table of the routes `routes` describe, each fixed key's slot taken from `tokens`
    /// ([`TokenCache::pin`]; one slot for routes sharing a key). They are pinned once this table
    /// runs: [`TokenCache::keep_pinned`] with [`Routes::pinned`].
    pub(crate) fn with_tokens(
        routes: Vec<RouteConfig>,
        tokens: &TokenCache,
    ) -> Result<Self, TokenError> {
        Self::build(routes, Some(tokens))
    }

    fn build(routes: Vec<RouteConfig>, tokens: Option<&TokenCache>) -> Result<Self, TokenError> {
        let mut slots: HashMap<TokenKey, PinnedSlot> = HashMap::new();
        let routes = routes
            .into_iter()
            .map(|route| {
                let mut route = Route::new(route)?;
                if let Some(tokens) = tokens {
                    route.tenancy.pin(&route.credential, |key| {
                        slots
                            .entry(key.clone())
                            .or_insert_with(|| tokens.pin(key))
                            .clone()
                    });
                }
                Ok(Arc::new(route))
            })
            .collect::<Result<Vec<_>, TokenError>>()?;
        let prefixes = routes.iter().map(|r| r.prefix.clone()).collect();
        let mut by_length = routes.clone();
        by_length.sort_by_key(|r| {
            std::cmp::Reverse(r.pattern.0.len() + r.pattern.1.as_ref().map_or(0, String::len))
        });
        Ok(Self {
            routes,
            by_length,
            prefixes,
        })
    }

    /// The route for a request path, if any, with the length of the path its prefix matched and
    /// the value of its `{tenant}` segment.
    pub fn find<'p>(&self, path: &'p str) -> Option<(&Arc<Route>, usize, Option<&'p str>)> {
        self.by_length
            .iter()
            .find_map(|r| r.split(path).map(|(len, tenant)| (r, len, tenant)))
    }

    /// Every pinned key with its slot (a key shared by routes once per route).
    pub(crate) fn pinned(&self) -> impl Iterator<Item = (&TokenKey, &PinnedSlot)> {
        self.routes.iter().filter_map(|route| match &route.tenancy {
            Tenancy::Fixed {
                key,
                slot: Some(slot),
            } => Some((key, slot)),
            _ => None,
        })
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
