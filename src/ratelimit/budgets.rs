//! Budgets: one limiter per thing Microsoft counts, shared by every route that draws on it. A
//! budget is keyed by its family (a preset, a route's own limits, or a named budget), the app (the
//! credential's client id) and the tenant the token is for; families Microsoft counts per tenant
//! alone leave the app out. Microsoft: throttling is "always on the combination of
//! application+tenant" (<https://github.com/MicrosoftDocs/microsoft-365-docs/issues/10124>);
//! advanced hunting is per tenant
//! (<https://learn.microsoft.com/en-us/graph/api/resources/security-api-overview>), and so is
//! Cloud Apps (<https://learn.microsoft.com/en-us/defender-cloud-apps/api-introduction>).
//!
//! The registry ([`Budgets`]) is built with each configuration and takes over the previous one's
//! budgets whose family keeps its limits, so a reload neither resets a spent allowance nor lifts a
//! hold. With a [`Store`], each budget draws on the store's copy (shared by every replica) while
//! the store answers, and on its own local copy otherwise.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::store::Store;
use super::{Admission, Limits, RateLimiter, Refusal, Remaining, UNLIMITED};

/// What a route's budget is keyed by besides the tenant: the family and, unless the family is
/// counted per tenant alone, the app.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BudgetFamily {
    /// The family's name (`mde`, `custom-100m`, `budget-NAME`, or `route:PREFIX` for a route
    /// without limits, whose budget only holds after an upstream 429).
    pub name: Arc<str>,
    /// The app's client id, or `None` for families counted per tenant.
    pub app: Option<Arc<str>>,
}

/// One budget's key: family, app (unless counted per tenant) and tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BudgetKey {
    family: Arc<str>,
    app: Option<Arc<str>>,
    tenant: Arc<str>,
}

impl fmt::Display for BudgetKey {
    /// `family/app/tenant`, with `*` for the app of a family counted per tenant: the label in
    /// metrics and `/-/status`, and the Redis key after the prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let app = self.app.as_deref().unwrap_or("*");
        write!(f, "{}/{app}/{}", self.family, self.tenant)
    }
}

/// How requests wait for a budget, from `[server]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// The longest a request waits.
    pub max_wait: Duration,
    /// The most requests waiting per budget.
    pub max_queue: usize,
}

/// Counts of what happened to one budget's requests, for `/-/status`.
#[derive(Debug, Default)]
struct Counts {
    waits: AtomicU64,
    refusals: AtomicU64,
    holds: AtomicU64,
}

/// One budget: its local limiter (the store, when one is configured, keeps the shared copy under
/// the budget's label).
#[derive(Debug)]
pub struct Budget {
    /// `family/app/tenant`, made once.
    label: String,
    limiter: RateLimiter,
    counts: Counts,
}

/// What `/-/status` and the metrics show of a budget.
#[derive(Debug, Clone)]
pub(crate) struct BudgetView {
    /// `family/app/tenant`.
    pub(crate) label: String,
    /// Its limits.
    pub(crate) limits: Limits,
    /// What is left, from the store when it answered, else from the local copy.
    pub(crate) remaining: Remaining,
    /// Whether `remaining` is the store's (shared) view.
    pub(crate) shared: bool,
    /// Requests that waited, were refused, and upstream 429s that held it, since it was made.
    pub(crate) waits: u64,
    /// See `waits`.
    pub(crate) refusals: u64,
    /// See `waits`.
    pub(crate) holds: u64,
}

impl Budget {
    /// `family/app/tenant`.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Waits until the request may go, or refuses it: from the store's shared budget while the
    /// store answers within its timeout (one round trip), else from the local one at once.
    pub async fn acquire(&self, store: Option<&Store>) -> Result<Admission, Refusal> {
        let outcome = match store {
            Some(store) => {
                let max_wait = self.limiter.max_wait();
                match store
                    .admit(
                        &self.label,
                        self.limiter.limits(),
                        max_wait,
                        self.limiter.queue_has_room(),
                    )
                    .await
                {
                    Some(Ok(wait)) => self.limiter.admitted(wait).await,
                    Some(Err(retry_after)) if retry_after > max_wait => {
                        Err(Refusal::TooLong { retry_after })
                    }
                    Some(Err(retry_after)) => Err(Refusal::QueueFull { retry_after }),
                    None => self.limiter.acquire().await,
                }
            }
            None => self.limiter.acquire().await,
        };
        match &outcome {
            Ok(Admission::Waited(_)) => self.counts.waits.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.counts.refusals.fetch_add(1, Ordering::Relaxed),
            Ok(Admission::Immediate) => 0,
        };
        outcome
    }

    /// Holds the budget for `wait` after an upstream 429: locally at once, and in the store (in
    /// the background, so the response is not delayed) for every replica.
    pub(crate) fn hold(&self, wait: Duration, store: Option<&Arc<Store>>) {
        self.counts.holds.fetch_add(1, Ordering::Relaxed);
        if let Some(until) = tokio::time::Instant::now().checked_add(wait) {
            self.limiter.hold_until(until.into_std());
        }
        if let Some(store) = store {
            Store::hold(store, self.label.clone(), wait);
        }
    }

    fn view(&self, remaining: Remaining, shared: bool) -> BudgetView {
        BudgetView {
            label: self.label.clone(),
            limits: self.limiter.limits(),
            remaining,
            shared,
            waits: self.counts.waits.load(Ordering::Relaxed),
            refusals: self.counts.refusals.load(Ordering::Relaxed),
            holds: self.counts.holds.load(Ordering::Relaxed),
        }
    }
}

/// The budgets of one configuration.
#[derive(Debug)]
pub struct Budgets {
    /// Each family's limits.
    families: HashMap<Arc<str>, Limits>,
    waiting: Waiting,
    store: Option<Arc<Store>>,
    budgets: Mutex<HashMap<BudgetKey, Arc<Budget>>>,
}

impl Budgets {
    /// The registry for families with these limits (a family name given twice keeps its first
    /// limits: validation refuses two limits for one named budget), drawing on `store` if any. Of
    /// `previous` (the running configuration's registry, on reload) it keeps every budget whose
    /// family still has the limits it was made with.
    pub fn new(
        families: impl IntoIterator<Item = (Arc<str>, Limits)>,
        waiting: Waiting,
        store: Option<Arc<Store>>,
        previous: Option<&Budgets>,
    ) -> Self {
        let mut limits = HashMap::new();
        for (family, family_limits) in families {
            limits.entry(family).or_insert(family_limits);
        }
        let mut budgets = HashMap::new();
        for (key, budget) in previous.map(Budgets::entries).unwrap_or_default() {
            if limits.get(&key.family) != Some(&budget.limiter.limits()) {
                continue;
            }
            budget
                .limiter
                .reconfigure(waiting.max_wait, waiting.max_queue);
            budgets.insert(key, budget);
        }
        Self {
            families: limits,
            waiting,
            store,
            budgets: Mutex::new(budgets),
        }
    }

    /// The budget of `family` for `tenant`, made on first use.
    pub fn get(&self, family: &BudgetFamily, tenant: &Arc<str>) -> Arc<Budget> {
        let key = BudgetKey {
            family: family.name.clone(),
            app: family.app.clone(),
            tenant: tenant.clone(),
        };
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(budget) = budgets.get(&key) {
            return Arc::clone(budget);
        }
        let limits = self.families.get(&key.family).copied().unwrap_or(UNLIMITED);
        let budget = Arc::new(Budget {
            label: key.to_string(),
            limiter: RateLimiter::new(limits, self.waiting.max_wait, self.waiting.max_queue),
            counts: Counts::default(),
        });
        budgets.insert(key, Arc::clone(&budget));
        budget
    }

    /// The store budgets draw on, if one is configured.
    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.as_ref()
    }

    /// Every budget made so far, by key.
    fn entries(&self) -> Vec<(BudgetKey, Arc<Budget>)> {
        let budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut entries: Vec<_> = budgets
            .iter()
            .map(|(key, budget)| (key.clone(), Arc::clone(budget)))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    /// What every budget has left (from the store in one round trip when it answers) and what
    /// happened to it, ordered by key.
    pub(crate) async fn views(&self) -> Vec<BudgetView> {
        let entries = self.entries();
        let shared = match &self.store {
            Some(store) => {
                let labels: Vec<&str> = entries.iter().map(|(_, b)| b.label()).collect();
                let limits: Vec<Limits> = entries.iter().map(|(_, b)| b.limiter.limits()).collect();
                store.peek(&labels, &limits).await
            }
            None => None,
        };
        match shared {
            Some(remaining) => entries
                .iter()
                .zip(remaining)
                .map(|((_, budget), remaining)| budget.view(remaining, true))
                .collect(),
            None => entries
                .iter()
                .map(|(_, budget)| budget.view(budget.limiter.remaining(), false))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
