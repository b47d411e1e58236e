//! Shared run-time state of a `Sim`: request counters, the injected Entra fault, the token lifetime and revocation.
//!
//! Tests hold an `Arc<SimControl>` and change behaviour while the servers run, so everything here takes `&self`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// What the simulated Entra token endpoint does instead of (or before) answering normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntraFault {
    /// 500 with an Entra-shaped `temporarily_unavailable` body (AADSTS90033, a transient service error).
    ServerError,
    /// 429 with `Retry-After` (whole seconds, rounded up) and an Entra-shaped AADSTS90055 `TenantThrottlingError` body.
    Throttled {
        /// Value announced in `Retry-After`.
        retry_after: Duration,
    },
    /// Answer normally, but only after this delay (for timeout tests).
    Delay(Duration),
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// Reject every request with this AADSTS code, using Entra's status and `error` value for it.
    RejectAll {
        /// The AADSTS number, e.g. `7000215`.
        code: u32,
    },
}

/// Counters and switches shared by every simulated server of one `Sim`.
#[derive(Debug)]
pub struct SimControl {
    token_requests: AtomicU64,
    api_requests: AtomicU64,
    unauthorized: AtomicU64,
    expired_tokens_seen: AtomicU64,
    /// Tokens carry the generation they were issued in; revocation bumps it.
    generation: AtomicU64,
    fault: Mutex<Option<EntraFault>>,
    token_lifetime: Mutex<Duration>,
    token_request_seen: Notify,
    open_streams: AtomicU64,
}

impl SimControl {
    pub(super) fn new(token_lifetime: Duration) -> Self {
        Self {
            open_streams: AtomicU64::new(0),
            token_requests: AtomicU64::new(0),
            api_requests: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            expired_tokens_seen: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            fault: Mutex::new(None),
            token_lifetime: Mutex::new(token_lifetime),
            token_request_seen: Notify::new(),
        }
    }

    /// POSTs received by the token endpoint, whatever their outcome (faults included).
    pub fn token_requests(&self) -> u64 {
        self.token_requests.load(Ordering::SeqCst)
    }

    /// Requests received by any Defender, Graph or MDCA server.
    pub fn api_requests(&self) -> u64 {
        self.api_requests.load(Ordering::SeqCst)
    }

    /// `/_sim/bytes` bodies being sent right now: a proxy that stops reading the upstream when its
    /// client goes away brings this back to zero.
    pub fn open_streams(&self) -> u64 {
        self.open_streams.load(Ordering::SeqCst)
    }

    pub(super) fn stream_opened(&self) {
        self.open_streams.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn stream_closed(&self) {
        self.open_streams.fetch_sub(1, Ordering::SeqCst);
    }

    /// API requests refused with 401 (missing, malformed, wrong-audience, expired or revoked token).
    pub fn unauthorized(&self) -> u64 {
        self.unauthorized.load(Ordering::SeqCst)
    }

    /// Of the refused API requests, how many carried an otherwise valid token that had expired.
    pub fn expired_tokens_seen(&self) -> u64 {
        self.expired_tokens_seen.load(Ordering::SeqCst)
    }

    /// Sets what the token endpoint does for every following request; `None` restores normal behaviour.
    pub fn set_fault(&self, fault: Option<EntraFault>) {
        *lock(&self.fault) = fault;
    }

    /// Changes the lifetime of tokens issued from now on (already issued tokens keep theirs).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.token_lifetime) = lifetime;
    }

    /// Makes every token issued so far invalid: the APIs answer 401 to them from now on.
    pub fn revoke_all_tokens(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Resolves to `true` once the token endpoint has received at least `n` requests, or to `false` after `deadline`.
    pub async fn wait_for_token_requests(&self, n: u64, deadline: Duration) -> bool {
        let reached = async {
            loop {
                // Register interest before checking, so an increment between the check and the await is not lost.
                let notified = self.token_request_seen.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.token_requests() >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(deadline, reached).await.is_ok()
    }

    pub(super) fn record_token_request(&self) {
        self.token_requests.fetch_add(1, Ordering::SeqCst);
        self.token_request_seen.notify_waiters();
    }

    pub(super) fn record_api_request(&self) {
        self.api_requests.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn record_unauthorized(&self, expired: bool) {
        self.unauthorized.fetch_add(1, Ordering::SeqCst);
        if expired {
            self.expired_tokens_seen.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(super) fn fault(&self) -> Option<EntraFault> {
        lock(&self.fault).clone()
    }

    pub(super) fn token_lifetime(&self) -> Duration {
        *lock(&self.token_lifetime)
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

/// The guarded values are plain data that cannot be left half-updated, so a poisoned lock is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn waiting_for_token_requests_wakes_up_when_the_count_is_reached() {
        let control = Arc::new(SimControl::new(Duration::from_secs(1)));
        let waiter = tokio::spawn({
            let control = Arc::clone(&control);
            async move {
                control
                    .wait_for_token_requests(2, Duration::from_secs(10))
                    .await
            }
        });
        control.record_token_request();
        control.record_token_request();
        assert!(waiter.await.expect("waiter task"));
    }

    #[tokio::test]
    async fn waiting_for_token_requests_gives_up_at_the_deadline() {
        let control = SimControl::new(Duration::from_secs(1));
        assert!(
            !control
                .wait_for_token_requests(1, Duration::from_millis(20))
                .await
        );
    }
}
