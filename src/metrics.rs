//! Prometheus metrics: the registry and every metric family the proxy exports, with handles
//! resolved once per route so that the request path only increments atomics. Labels carry route
//! prefixes, credential names, tenants and scopes: never a secret.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod budget;

pub(crate) use budget::{BudgetEvent, BudgetSample};
use budget::{BudgetLabels, WindowLabels};

/// The prefix of every metric name.
const PREFIX: &str = "defender_token_proxy";

/// Which token a token metric is about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenLabel<'a> {
    /// The credential's name.
    pub credential: &'a str,
    /// The tenant the token is for.
    pub tenant: &'a str,
    /// Its scope.
    pub scope: &'a str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenRequestLabels {
    credential: String,
    tenant: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    credential: String,
    tenant: String,
    scope: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Upstream latency buckets: 1 ms doubling to about 65 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Every metric, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    upstream_duration: HistogramFamily<RouteLabels>,
    token_requests: Family<TokenRequestLabels, Counter>,
    token_expiry: Family<TokenLabels, Gauge<f64, AtomicU64>>,
    cache_hits: Counter,
    cache_misses: Counter,
    ready: Gauge,
    reloads: Family<OutcomeLabels, Counter>,
    rate_limit_waits: Family<RouteLabels, Counter>,
    rate_limit_refusals: Family<RouteLabels, Counter>,
    identity_requests: Family<OutcomeLabels, Counter>,
    budget_remaining: Family<WindowLabels, Gauge>,
    budget_held: Family<BudgetLabels, Gauge<f64, AtomicU64>>,
    budget_waits: Family<BudgetLabels, Counter>,
    budget_refusals: Family<BudgetLabels, Counter>,
    budget_holds: Family<BudgetLabels, Counter>,
    store_fallbacks: Counter,
    store_up: Gauge,
}

/// The request metrics of one route, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct RouteMetrics {
    /// Responses by status class: 1xx to 5xx.
    by_class: [Counter; 5],
    upstream_duration: Histogram,
    rate_limit_waits: Counter,
    rate_limit_refusals: Counter,
}

impl RouteMetrics {
    /// Counts a response with `status`.
    pub(crate) fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].inc();
    }

    /// Counts a request that waited for a rate-limit slot.
    pub(crate) fn rate_limit_wait(&self) {
        self.rate_limit_waits.inc();
    }

    /// Counts a request refused by the rate limiter (429).
    pub(crate) fn rate_limit_refusal(&self) {
        self.rate_limit_refusals.inc();
    }

    /// Records how long the upstream took to answer (until its response headers).
    pub(crate) fn upstream_latency(&self, elapsed: Duration) {
        self.upstream_duration.observe(elapsed.as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let requests = Family::default();
        registry.register(
            "requests",
            "Requests by route and response status class (the proxy's own answers included)",
            requests.clone(),
        );
        let upstream_duration =
            HistogramFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "upstream_duration_seconds",
            "Time from sending a request upstream to its response headers",
            upstream_duration.clone(),
        );
        let token_requests = Family::default();
        registry.register(
            "token_requests",
            "Token requests to Entra ID by credential, tenant and outcome",
            token_requests.clone(),
        );
        let token_expiry = Family::default();
        registry.register(
            "token_expiry_seconds",
            "Seconds until the cached token expires (0 when none is cached)",
            token_expiry.clone(),
        );
        let cache_lookups = Family::default();
        registry.register(
            "token_cache_lookups",
            "Token cache lookups: hit (a usable token was cached) or miss",
            cache_lookups.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 when every route's token is cached and valid, else 0",
            ready.clone(),
        );
        let reloads = Family::default();
        registry.register(
            "config_reloads",
            "Configuration reloads: applied or refused",
            reloads.clone(),
        );
        let rate_limit_waits = Family::default();
        registry.register(
            "rate_limit_waits",
            "Requests that waited for a client-side rate-limit slot, by route",
            rate_limit_waits.clone(),
        );
        let rate_limit_refusals = Family::default();
        registry.register(
            "rate_limit_refusals",
            "Requests refused with 429 by the client-side rate limiter, by route",
            rate_limit_refusals.clone(),
        );
        let identity_requests = Family::default();
        registry.register(
            "identity_requests",
            "Requests to the managed-identity endpoint: issued, or the refusal's kind",
            identity_requests.clone(),
        );
        let budget_remaining = Family::default();
        registry.register(
            "rate_limit_budget_remaining",
            "Requests a rate-limit budget lets through now, by budget (family/app/tenant) and window",
            budget_remaining.clone(),
        );
        let budget_held = Family::default();
        registry.register(
            "rate_limit_budget_held_seconds",
            "Seconds left of the hold after an upstream 429, by budget",
            budget_held.clone(),
        );
        let budget_waits = Family::default();
        registry.register(
            "rate_limit_budget_waits",
            "Requests that waited for their turn, by budget",
            budget_waits.clone(),
        );
        let budget_refusals = Family::default();
        registry.register(
            "rate_limit_budget_refusals",
            "Requests refused with 429 by the client-side rate limiter, by budget",
            budget_refusals.clone(),
        );
        let budget_holds = Family::default();
        registry.register(
            "rate_limit_budget_holds",
            "Upstream 429s that held a budget, by budget",
            budget_holds.clone(),
        );
        let store_fallbacks = Counter::default();
        registry.register(
            "rate_limit_store_fallbacks",
            "Times the rate-limit store stopped answering and budgets fell back to local ones",
            store_fallbacks.clone(),
        );
        let store_up = Gauge::default();
        registry.register(
            "rate_limit_store_up",
            "1 while budgets are shared through the rate-limit store, else 0",
            store_up.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because the log writer could not keep up or standard error was gone",
            crate::telemetry::lines_dropped(),
        );
        let cache_hits = cache_lookups.get_or_create_owned(&ResultLabels { result: "hit" });
        let cache_misses = cache_lookups.get_or_create_owned(&ResultLabels { result: "miss" });
        Self {
            registry,
            requests,
            cache_hits,
            cache_misses,
            rate_limit_waits,
            rate_limit_refusals,
            budget_remaining,
            budget_held,
            budget_waits,
            budget_refusals,
            budget_holds,
            store_fallbacks,
            store_up,
            upstream_duration,
            token_requests,
            token_expiry,
            ready,
            reloads,
            identity_requests,
        }
    }
}

impl Metrics {
    /// The handles for route `prefix` (`unmatched` for requests that matched no route).
    pub(crate) fn route(&self, prefix: &str) -> RouteMetrics {
        let class = |status_class| {
            self.requests.get_or_create_owned(&RequestLabels {
                route: prefix.to_owned(),
                status_class,
            })
        };
        RouteMetrics {
            by_class: [
                class("1xx"),
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
            ],
            upstream_duration: self.upstream_duration.get_or_create_owned(&RouteLabels {
                route: prefix.to_owned(),
            }),
            rate_limit_waits: self.rate_limit_waits.get_or_create_owned(&RouteLabels {
                route: prefix.to_owned(),
            }),
            rate_limit_refusals: self.rate_limit_refusals.get_or_create_owned(&RouteLabels {
                route: prefix.to_owned(),
            }),
        }
    }

    /// Counts a token cache lookup.
    pub(crate) fn cache_lookup(&self, hit: bool) {
        if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        }
        .inc();
    }

    /// Counts a token request's outcome.
    /// `outcome` is `success` or the failure's name.
    pub(crate) fn token_request(&self, token: TokenLabel<'_>, outcome: &'static str) {
        self.token_requests
            .get_or_create(&TokenRequestLabels {
                credential: token.credential.to_owned(),
                tenant: token.tenant.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Counts a request to the managed-identity endpoint: `issued`, or the refusal's kind.
    pub(crate) fn identity_request(&self, outcome: &'static str) {
        self.identity_requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts a configuration reload.
    pub(crate) fn reload(&self, applied: bool) {
        let outcome = if applied { "applied" } else { "refused" };
        self.reloads.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// The exposition text, with the token gauges set from `tokens` (key and seconds until expiry)
    /// and readiness from `ready`.
    pub(crate) fn encode(&self, tokens: &[(TokenLabel<'_>, Duration)], ready: bool) -> String {
        self.token_expiry.clear();
        for (token, expires_in) in tokens {
            self.token_expiry
                .get_or_create(&TokenLabels {
                    credential: token.credential.to_owned(),
                    tenant: token.tenant.to_owned(),
                    scope: token.scope.to_owned(),
                })
                .set(expires_in.as_secs_f64());
        }
        self.ready.set(i64::from(ready));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests;
