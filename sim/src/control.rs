//! Shared run-time state of a `Sim`: the token lifetime and revocation generation, the device code and refresh
//! token stores, the user's side of the device code flow and, with the test hooks, request counters, the injected
//! Entra fault, refused tenants and the records tests read back (federated assertions).
//!
//! Tests hold an `Arc<SimControl>` and change behaviour while the servers run, so everything here takes `&self`.

#[cfg(any(test, feature = "test-hooks"))]
use std::collections::HashMap;
use std::sync::Arc;
#[cfg(any(test, feature = "test-hooks"))]
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[cfg(any(test, feature = "test-hooks"))]
use tokio::sync::Notify;

use super::directory::Directory;
#[cfg(any(test, feature = "test-hooks"))]
use super::sync::lock;
use crate::device_codes::DeviceCodes;
use crate::refresh_tokens::RefreshTokens;

/// What the simulated Entra token endpoint does instead of (or before) answering normally.
#[cfg(any(test, feature = "test-hooks"))]
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
    /// 200 with this JSON body in place of the token response: answers Entra should never send (an
    /// absurd `expires_in`, an empty `access_token`), to test that the client refuses them.
    Answer(String),
    /// Reject every request with this AADSTS code, using Entra's status and `error` value for it.
    RejectAll {
        /// The AADSTS number, e.g. `7000215`.
        code: u32,
    },
}

/// Run-time state shared by every simulated server of one `Sim`, and the user's side of the device code flow
/// (nobody opens a browser here). With the `test-hooks` feature also counters and switches for tests.
#[derive(Debug)]
pub struct SimControl {
    /// Tokens carry the generation they were issued in; revocation bumps it.
    generation: AtomicU64,
    token_lifetime: Duration,
    directory: Arc<Directory>,
    pub(super) device_codes: DeviceCodes,
    pub(super) refresh_tokens: RefreshTokens,
    #[cfg(any(test, feature = "test-hooks"))]
    hooks: Hooks,
}

/// What only the test hooks read or set.
#[cfg(any(test, feature = "test-hooks"))]
#[derive(Debug, Default)]
struct Hooks {
    token_requests: AtomicU64,
    api_requests: AtomicU64,
    identity_requests: AtomicU64,
    unauthorized: AtomicU64,
    expired_tokens_seen: AtomicU64,
    fault: Mutex<Option<EntraFault>>,
    token_request_seen: Notify,
    /// Token requests being answered right now, and the most there ever were at once.
    token_requests_in_flight: AtomicU64,
    most_token_requests_in_flight: AtomicU64,
    open_streams: AtomicU64,
    /// Token requests per tenant key (`Directory::tenant_key`).
    tenant_requests: Mutex<HashMap<String, u64>>,
    /// Token requests per `grant_type` value, as sent.
    grant_requests: Mutex<HashMap<String, u64>>,
    /// AADSTS code every token request in a tenant (by tenant key) fails with.
    refused_tenants: Mutex<HashMap<String, u32>>,
    federated_assertions: Mutex<Vec<String>>,
    /// The `Accept-Encoding` of the last API request (`None`: it had none), as sent.
    last_accept_encoding: Mutex<Option<String>>,
}

impl SimControl {
    pub(super) fn new(token_lifetime: Duration, directory: Arc<Directory>) -> Self {
        Self {
            generation: AtomicU64::new(0),
            token_lifetime,
            directory,
            device_codes: DeviceCodes::default(),
            refresh_tokens: RefreshTokens::default(),
            #[cfg(any(test, feature = "test-hooks"))]
            hooks: Hooks::default(),
        }
    }

    /// The user code of the newest device code still waiting for the user (not approved, declined, expired or
    /// redeemed); if there is none, waits until one is issued. `None` once `deadline` has passed.
    pub async fn wait_for_device_code(&self, deadline: Duration) -> Option<String> {
        self.device_codes.wait_for_pending(deadline).await
    }

    /// Signs `username` in for the device code `user_code` (both case-insensitive): its next poll gets tokens.
    /// False if the user is unknown or no code with that user code is still waiting for the user.
    pub fn approve_device_code(&self, user_code: &str, username: &str) -> bool {
        let Some(user) = self.directory.user(username) else {
            return false;
        };
        self.device_codes
            .decide(user_code, Some(user.user.username.clone()))
    }

    /// The user declines the device code `user_code`: its next poll answers `authorization_declined`. False if no
    /// code with that user code is still waiting for the user.
    pub fn decline_device_code(&self, user_code: &str) -> bool {
        self.device_codes.decide(user_code, None)
    }

    pub(super) fn token_lifetime(&self) -> Duration {
        self.token_lifetime
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

/// The test hooks: counters only tests read, fault injection and switches, and what the servers record for them.
#[cfg(any(test, feature = "test-hooks"))]
impl SimControl {
    /// POSTs received by the token endpoint, whatever their outcome (faults included).
    pub fn token_requests(&self) -> u64 {
        self.hooks.token_requests.load(Ordering::SeqCst)
    }

    /// The most token-endpoint requests that were being answered at the same moment (the high-water
    /// mark of requests in flight, faults and delays included).
    pub fn most_token_requests_in_flight(&self) -> u64 {
        self.hooks
            .most_token_requests_in_flight
            .load(Ordering::SeqCst)
    }

    /// Requests received by any Defender, Graph or MDCA server.
    pub fn api_requests(&self) -> u64 {
        self.hooks.api_requests.load(Ordering::SeqCst)
    }

    /// Requests received by the managed-identity server (IMDS and App Service alike, whatever their outcome).
    pub fn identity_requests(&self) -> u64 {
        self.hooks.identity_requests.load(Ordering::SeqCst)
    }

    /// `/_sim/bytes` bodies being sent right now: a proxy that stops reading the upstream when its
    /// client goes away brings this back to zero.
    pub fn open_streams(&self) -> u64 {
        self.hooks.open_streams.load(Ordering::SeqCst)
    }

    /// API requests refused with 401 (missing, malformed, wrong-audience, expired or revoked token).
    pub fn unauthorized(&self) -> u64 {
        self.hooks.unauthorized.load(Ordering::SeqCst)
    }

    /// Of the refused API requests, how many carried an otherwise valid token that had expired.
    pub fn expired_tokens_seen(&self) -> u64 {
        self.hooks.expired_tokens_seen.load(Ordering::SeqCst)
    }

    /// Sets what the token endpoint and the managed-identity server do for every following request (the latter
    /// answers in its own `{error, error_description}` shape); `None` restores normal behaviour.
    pub fn set_fault(&self, fault: Option<EntraFault>) {
        *lock(&self.hooks.fault) = fault;
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
                let notified = self.hooks.token_request_seen.notified();
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

    /// Token-endpoint requests whose path named `tenant` (by GUID or domain, case-insensitively; both count for the
    /// same tenant). An unknown tenant is counted under the name used.
    pub fn token_requests_in(&self, tenant: &str) -> u64 {
        let key = self.directory.tenant_key(tenant);
        lock(&self.hooks.tenant_requests)
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    /// Token-endpoint requests with this exact `grant_type` value (e.g. "client_credentials", "refresh_token",
    /// "urn:ietf:params:oauth:grant-type:device_code", "authorization_code", "password"), whatever their outcome.
    pub fn grant_requests(&self, grant_type: &str) -> u64 {
        lock(&self.hooks.grant_requests)
            .get(grant_type)
            .copied()
            .unwrap_or(0)
    }

    /// `Some(code)`: every token request in `tenant` (GUID or domain) fails from now on with that AADSTS code's Entra
    /// error, e.g. 65001 (consent missing) or 700016 (app not in tenant) as a customer without consent answers
    /// (<https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes>). Checked after the tenant
    /// exists and before anything about the grant. `None` stops refusing. Applies to the token endpoint only.
    pub fn refuse_tenant(&self, tenant: &str, code: Option<u32>) {
        let key = self.directory.tenant_key(tenant);
        let mut refused = lock(&self.hooks.refused_tenants);
        match code {
            Some(code) => refused.insert(key, code),
            None => refused.remove(&key),
        };
    }

    /// The `jti` of every federated (workload identity) assertion accepted, oldest first; an assertion without
    /// `jti` is recorded as "".
    pub fn federated_assertions(&self) -> Vec<String> {
        lock(&self.hooks.federated_assertions).clone()
    }

    /// The next `polls` device-code polls (of any code) answer 400 `slow_down`; 0 stops that.
    pub fn set_slow_down(&self, polls: u32) {
        self.device_codes.set_slow_down(polls);
    }

    /// Every device code issued so far and not redeemed (waiting or approved) answers `expired_token` from now on;
    /// codes issued later are not affected.
    pub fn expire_device_codes(&self) {
        self.device_codes.expire_all();
    }

    /// Every refresh token issued so far answers `invalid_grant` AADSTS50173, as after a password reset; later
    /// sign-ins get working ones.
    pub fn revoke_refresh_tokens(&self) {
        self.refresh_tokens.revoke_all();
    }

    /// How often a rotated-out refresh token was presented (each time its whole family is revoked).
    pub fn refresh_token_reuses(&self) -> u64 {
        self.refresh_tokens.reuses()
    }

    /// Counts a token request in flight until the guard is dropped (its answer is ready).
    pub(super) fn token_request_in_flight(&self) -> InFlight<'_> {
        let now = self
            .hooks
            .token_requests_in_flight
            .fetch_add(1, Ordering::SeqCst)
            + 1;
        self.hooks
            .most_token_requests_in_flight
            .fetch_max(now, Ordering::SeqCst);
        InFlight(&self.hooks.token_requests_in_flight)
    }

    pub(super) fn stream_opened(&self) {
        self.hooks.open_streams.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn stream_closed(&self) {
        self.hooks.open_streams.fetch_sub(1, Ordering::SeqCst);
    }

    pub(super) fn record_token_request(&self, tenant_key: String, grant_type: Option<&str>) {
        *lock(&self.hooks.tenant_requests)
            .entry(tenant_key)
            .or_default() += 1;
        if let Some(grant_type) = grant_type {
            *lock(&self.hooks.grant_requests)
                .entry(grant_type.to_owned())
                .or_default() += 1;
        }
        self.hooks.token_requests.fetch_add(1, Ordering::SeqCst);
        self.hooks.token_request_seen.notify_waiters();
    }

    pub(super) fn refusal(&self, tenant_key: &str) -> Option<u32> {
        lock(&self.hooks.refused_tenants).get(tenant_key).copied()
    }

    pub(super) fn record_federated_assertion(&self, jti: String) {
        lock(&self.hooks.federated_assertions).push(jti);
    }

    pub(super) fn record_identity_request(&self) {
        self.hooks.identity_requests.fetch_add(1, Ordering::SeqCst);
    }

    /// The `Accept-Encoding` header of the last request an API server received (the first, if it had several), or
    /// `None` if it had none: what a proxy asked the upstream for.
    pub fn last_accept_encoding(&self) -> Option<String> {
        lock(&self.hooks.last_accept_encoding).clone()
    }

    pub(super) fn record_api_request(&self, accept_encoding: Option<&axum::http::HeaderValue>) {
        *lock(&self.hooks.last_accept_encoding) =
            accept_encoding.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        self.hooks.api_requests.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn record_unauthorized(&self, expired: bool) {
        self.hooks.unauthorized.fetch_add(1, Ordering::SeqCst);
        if expired {
            self.hooks
                .expired_tokens_seen
                .fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(super) fn fault(&self) -> Option<EntraFault> {
        lock(&self.hooks.fault).clone()
    }
}

/// A token request being answered (see `SimControl::token_request_in_flight`).
#[cfg(any(test, feature = "test-hooks"))]
pub(super) struct InFlight<'a>(&'a AtomicU64);

#[cfg(any(test, feature = "test-hooks"))]
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimOptions;

    fn control() -> SimControl {
        let directory = Directory::new(&SimOptions::default());
        SimControl::new(Duration::from_secs(1), Arc::new(directory))
    }

    #[tokio::test]
    async fn waiting_for_token_requests_wakes_up_when_the_count_is_reached() {
        let control = Arc::new(control());
        let waiter = tokio::spawn({
            let control = Arc::clone(&control);
            async move {
                control
                    .wait_for_token_requests(2, Duration::from_secs(10))
                    .await
            }
        });
        control.record_token_request("t".to_owned(), None);
        control.record_token_request("t".to_owned(), None);
        assert!(waiter.await.expect("waiter task"));
    }

    #[test]
    fn the_high_water_mark_keeps_the_most_token_requests_in_flight_at_once() {
        let control = control();
        let first = control.token_request_in_flight();
        let second = control.token_request_in_flight();
        drop(first);
        let third = control.token_request_in_flight();
        drop((second, third));
        drop(control.token_request_in_flight());
        assert_eq!(control.most_token_requests_in_flight(), 2);
    }

    #[tokio::test]
    async fn waiting_for_token_requests_gives_up_at_the_deadline() {
        let control = control();
        assert!(
            !control
                .wait_for_token_requests(1, Duration::from_millis(20))
                .await
        );
    }
}
