//! The token cache: one slot per (credential, tenant, scope) (a route's fixed key pinned where the
//! route holds it; partner tenants and user credentials on moka, which evicts them), filled by
//! exactly one Entra request however many callers wait, refreshed ahead of expiry in the
//! background while callers keep the still-valid token, never handing out a token past its usable
//! lifetime, and backing off after failures. Every token request passes the process-wide bound of requests in flight per authority
//! (`gate`), a client's before warm-up and refreshes.

mod access;
mod background;
mod direct;
mod entra;
mod error;
mod gate;
mod grant;
mod hints;
mod pinned;
mod schedule;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Mutex, OwnedMutexGuard};

pub use access::AccessToken;
pub use entra::EntraClient;
pub use entra::EntraRejection;
pub(crate) use entra::{TokenResponse, token_endpoint};
pub(crate) use error::NO_MANAGED_IDENTITY;
pub use error::TokenError;
pub(crate) use grant::user_scope;
pub(crate) use hints::hint;
pub(crate) use pinned::{PinnedSlot, TokenEntry};

use crate::credential::Credential;
use crate::metrics::{Metrics, TokenLabel};
use gate::{Gates, Permit};

/// Slots unused for this long are dropped (a partner proxy may see many tenants once).
const SLOT_IDLE: Duration = Duration::from_secs(24 * 60 * 60);
/// At most this many slots are kept.
const MAX_SLOTS: u64 = 100_000;
/// After an upstream 401, a token is dropped and a fresh one requested at most this often per
/// entry: a resource that keeps answering 401 must not turn every request into a token request.
const FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// What a cached token is for. Different credentials (or versions of one), tenants and scopes
/// never share a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey {
    /// The credential's name.
    pub credential: Arc<str>,
    /// The credential's fingerprint: a changed credential makes new keys.
    pub fingerprint: u64,
    /// The tenant the token is issued by.
    pub tenant: Arc<str>,
    /// The scope it was requested for.
    pub scope: Arc<str>,
}

impl TokenKey {
    /// The key for `credential`'s tokens in `tenant` for `scope`.
    pub(crate) fn new(credential: &Credential, tenant: Arc<str>, scope: Arc<str>) -> Self {
        Self {
            credential: credential.name.clone(),
            fingerprint: credential.fingerprint,
            tenant,
            scope,
        }
    }

    /// The key's metric labels.
    pub(crate) fn label(&self) -> TokenLabel<'_> {
        TokenLabel {
            credential: &self.credential,
            tenant: &self.tenant,
            scope: &self.scope,
        }
    }
}

/// Instants as nanoseconds since the first use of the cache, so that they fit an atomic.
static CLOCK_BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

fn ticks(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(*CLOCK_BASE).as_nanos()).unwrap_or(u64::MAX)
}

/// One cache entry: the current token and the state of requests for the next one.
struct Slot {
    current: RwLock<Option<Arc<AccessToken>>>,
    /// When the next background refresh is due (see [`ticks`]): the token's refresh time, or after a
    /// failed refresh, the end of the backoff.
    refresh_due: AtomicU64,
    /// Whether a background refresh is under way.
    refreshing: AtomicBool,
    /// Completed token requests, to tell waiters that the request they waited on has finished.
    attempts: AtomicU64,
    /// When a token was last dropped after an upstream 401 (see [`ticks`]; 0: never).
    last_forced: AtomicU64,
    /// Held for the whole of a token request: this is what makes it single-flight.
    fetch: Arc<Mutex<FetchState>>,
}

#[derive(Default)]
struct FetchState {
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<Arc<TokenError>>,
}

impl Slot {
    fn new() -> Self {
        Self {
            current: RwLock::new(None),
            refresh_due: AtomicU64::new(u64::MAX),
            refreshing: AtomicBool::new(false),
            attempts: AtomicU64::new(0),
            last_forced: AtomicU64::new(0),
            fetch: Arc::new(Mutex::new(FetchState::default())),
        }
    }

    fn usable(&self, now: Instant) -> Option<Arc<AccessToken>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().filter(|t| t.usable_at(now)).cloned()
    }

    fn store(&self, token: Arc<AccessToken>) {
        self.refresh_due
            .store(ticks(token.refresh_at), Ordering::Release);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(token);
    }
}

/// A cache entry's state, for readiness, status and metrics.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenStatus {
    /// The usable token, if one is cached.
    pub token: Option<Arc<AccessToken>>,
    /// The last request's failure, if the last request failed.
    pub last_error: Option<Arc<TokenError>>,
}

impl TokenStatus {
    /// `valid` (a usable token is cached), `failing` (the last request failed) or `none`.
    pub(crate) fn state(&self) -> &'static str {
        match (&self.token, &self.last_error) {
            (Some(_), _) => "valid",
            (None, Some(_)) => "failing",
            (None, None) => "none",
        }
    }
}

/// The token cache. Cheap to clone; it outlives configuration reloads.
#[derive(Clone)]
pub struct TokenCache {
    /// Keys nothing holds for long: partner customers' and user credentials'.
    slots: moka::sync::Cache<TokenKey, Arc<Slot>>,
    /// The running routes' fixed keys (see `pinned`), never evicted.
    pinned: Arc<RwLock<HashMap<TokenKey, Arc<Slot>>>>,
    metrics: Arc<Metrics>,
    gates: Arc<Gates>,
}

impl TokenCache {
    /// An empty cache reporting to `metrics`, with at most `request_concurrency` token requests in
    /// flight per authority.
    pub fn new(metrics: Arc<Metrics>, request_concurrency: usize) -> Self {
        Self {
            slots: moka::sync::Cache::builder()
                .max_capacity(MAX_SLOTS)
                .time_to_idle(SLOT_IDLE)
                .build(),
            pinned: Arc::default(),
            metrics,
            gates: Arc::new(Gates::new(request_concurrency)),
        }
    }

    /// Changes the bound on token requests in flight per authority (on reload); requests already
    /// under way finish under the old one.
    pub(crate) fn set_request_concurrency(&self, request_concurrency: usize) {
        self.gates.set_limit(request_concurrency);
    }

    /// A usable token for `key`, from the cache or from Entra through `entra`. Concurrent callers
    /// for the same missing token share one request; a due refresh happens in the background.
    pub async fn token(
        &self,
        key: &TokenKey,
        credential: &Arc<Credential>,
        entra: &EntraClient,
    ) -> Result<Arc<AccessToken>, Arc<TokenError>> {
        self.token_in(&self.slot(key), key, credential, entra).await
    }

    /// [`TokenCache::token`] in `slot`.
    async fn token_in(
        &self,
        slot: &Arc<Slot>,
        key: &TokenKey,
        credential: &Arc<Credential>,
        entra: &EntraClient,
    ) -> Result<Arc<AccessToken>, Arc<TokenError>> {
        let now = Instant::now();
        if let Some(token) = slot.usable(now) {
            self.metrics.cache_lookup(true);
            if ticks(now) >= slot.refresh_due.load(Ordering::Acquire) {
                self.refresh_in_background(slot, key, credential, entra);
            }
            return Ok(token);
        }
        self.metrics.cache_lookup(false);
        let seen = slot.attempts.load(Ordering::Acquire);
        let state = slot.fetch.clone().lock_owned().await;
        let now = Instant::now();
        // Whoever held the lock may have just fetched the token, or failed to: either way its
        // outcome is ours too, so that one request serves every waiter.
        if let Some(token) = slot.usable(now) {
            return Ok(token);
        }
        if slot.attempts.load(Ordering::Acquire) != seen
            && let Some(error) = &state.last_error
        {
            return Err(error.clone());
        }
        if let (Some(retry_at), Some(last)) = (state.retry_at, &state.last_error)
            && now < retry_at
        {
            return Err(Arc::new(TokenError::BackingOff {
                retry_after: retry_at - now,
                last: last.clone(),
            }));
        }
        // In its own task, so that a caller going away does not cancel a request others wait for.
        let gate = self.gates.of(&credential.authority);
        let fetch = tokio::spawn(self.clone().fetch(
            state,
            slot.clone(),
            key.clone(),
            credential.clone(),
            entra.clone(),
            async move { gate.on_demand().await },
        ));
        fetch
            .await
            .unwrap_or_else(|_| Err(Arc::new(TokenError::Interrupted)))
    }

    /// The state of `key`'s entry, without requesting anything.
    pub(crate) fn status(&self, key: &TokenKey) -> TokenStatus {
        let Some(slot) = self.existing_slot(&TokenEntry::keyed(std::borrow::Cow::Borrowed(key)))
        else {
            return TokenStatus::default();
        };
        TokenStatus {
            token: slot.usable(Instant::now()),
            // A request in progress holds the lock; its outcome is not known yet either way.
            last_error: slot
                .fetch
                .try_lock()
                .ok()
                .and_then(|s| s.last_error.clone()),
        }
    }

    /// Forgets `token` for `key` after the upstream refused it (HTTP 401), so that the next
    /// [`TokenCache::token`] gets a fresh one. Returns whether to retry: true when the token was
    /// dropped now or had already been replaced; false when a token for this entry was dropped
    /// less than [`FORCED_REFRESH_INTERVAL`] ago (the 401 then goes to the client).
    pub(crate) fn invalidate(&self, key: &TokenEntry<'_>, token: &Arc<AccessToken>) -> bool {
        let Some(slot) = self.existing_slot(key) else {
            return true;
        };
        let still_cached = {
            let current = slot.current.read().unwrap_or_else(|e| e.into_inner());
            current.as_ref().is_some_and(|c| Arc::ptr_eq(c, token))
        };
        if !still_cached {
            return true;
        }
        let now = ticks(Instant::now());
        let last = slot.last_forced.load(Ordering::Acquire);
        let interval = u64::try_from(FORCED_REFRESH_INTERVAL.as_nanos()).unwrap_or(u64::MAX);
        if last != 0 && now.saturating_sub(last) < interval {
            return false;
        }
        if slot
            .last_forced
            .compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another request is dropping it right now; retry with whatever it gets.
            return true;
        }
        let mut current = slot.current.write().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, token)) {
            *current = None;
        }
        tracing::info!(credential = %key.credential, tenant = %key.tenant, scope = %key.scope, "token refused upstream (401): dropped");
        true
    }

    /// Drops every entry of moka's that `keep` rejects: on reload, the tokens of credentials that
    /// changed or went (pinned ones go with their routes, see [`TokenCache::keep_pinned`]).
    pub(crate) fn retain(&self, keep: impl Fn(&TokenKey) -> bool) -> usize {
        let stale: Vec<Arc<TokenKey>> = self
            .slots
            .iter()
            .map(|(key, _)| key)
            .filter(|key| !keep(key))
            .collect();
        for key in &stale {
            self.slots.invalidate(&**key);
        }
        stale.len()
    }

    /// One token request, made while holding the slot's lock (`state`) and, once it resolves, the
    /// `permit` of the authority's gate.
    async fn fetch(
        self,
        mut state: OwnedMutexGuard<FetchState>,
        slot: Arc<Slot>,
        key: TokenKey,
        credential: Arc<Credential>,
        entra: EntraClient,
        permit: impl Future<Output = Permit>,
    ) -> Result<Arc<AccessToken>, Arc<TokenError>> {
        let outcome = {
            let _permit = permit.await;
            let (sent_at, sent_at_wall) = (Instant::now(), SystemTime::now());
            entra
                .acquire(&credential, &key.tenant, &key.scope)
                .await
                .and_then(|response| AccessToken::new(response, sent_at, sent_at_wall))
        };
        slot.attempts.fetch_add(1, Ordering::AcqRel);
        self.metrics.token_request(
            key.label(),
            outcome
                .as_ref()
                .map_or_else(|error| error.outcome(), |_| "success"),
        );
        match outcome {
            Ok(token) => {
                let token = Arc::new(token);
                tracing::info!(
                    credential = %key.credential,
                    tenant = %key.tenant,
                    scope = %key.scope,
                    expires_in_s = token.expires_in().as_secs(),
                    "token acquired"
                );
                *state = FetchState::default();
                slot.store(token.clone());
                Ok(token)
            }
            Err(error) => {
                let error = Arc::new(error);
                state.failures += 1;
                let wait = schedule::backoff(state.failures, error.retry_after());
                let retry_at = Instant::now() + wait;
                // A missing sign-in is known without asking Entra (the refused refresh token is
                // remembered), and so is an unreadable or corrupt sign-in file: callers are told at
                // once rather than after a pause, and a new `login` takes effect with the next
                // request.
                state.retry_at =
                    (!matches!(*error, TokenError::LoginRequired(_) | TokenError::State(_)))
                        .then_some(retry_at);
                state.last_error = Some(error.clone());
                slot.refresh_due.store(ticks(retry_at), Ordering::Release);
                tracing::warn!(
                    credential = %key.credential,
                    tenant = %key.tenant,
                    scope = %key.scope,
                    failures = state.failures,
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    error = %crate::report::error_chain(&*error),
                    "token request failed"
                );
                Err(error)
            }
        }
    }
}
