//! Token requests nobody waits for: the warm-up ahead of a token's first use and the refresh ahead
//! of its expiry. Both wait for a background permit of the authority's gate before they take the
//! slot's lock, so that a client asking for the same token meanwhile goes ahead of them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::StreamExt;

use super::{EntraClient, Slot, TokenCache, TokenKey, ticks};
use crate::credential::Credential;

impl TokenCache {
    /// Fetches `key`'s token ahead of its first use, unless one is cached, being fetched or backing
    /// off. It waits for a background permit before it takes the entry's lock, so that a client
    /// asking for the same token meanwhile is not held behind the warm-up queue.
    async fn warm(&self, key: &TokenKey, credential: &Arc<Credential>, entra: &EntraClient) {
        let slot = self.slot(key);
        if slot.usable(Instant::now()).is_some() {
            return;
        }
        let permit = self.gates.of(&credential.authority).background().await;
        let Ok(state) = slot.fetch.clone().try_lock_owned() else {
            return;
        };
        let now = Instant::now();
        let backing_off = state.retry_at.is_some_and(|at| now < at) && state.last_error.is_some();
        if slot.usable(now).is_some() || backing_off {
            return;
        }
        // The outcome is recorded in the slot and logged by `fetch`.
        drop(
            self.clone()
                .fetch(
                    state,
                    slot,
                    key.clone(),
                    credential.clone(),
                    entra.clone(),
                    async { permit },
                )
                .await,
        );
    }

    /// Warms every token of `needed` (see [`TokenCache::warm`]) as one task, as many at once as
    /// the bound on requests in flight allows: a thousand tenants must not make a thousand tasks,
    /// each holding a token request's state, at once.
    pub(crate) async fn warm_all(
        &self,
        needed: Vec<(TokenKey, Arc<Credential>)>,
        entra: &EntraClient,
    ) {
        futures_util::stream::iter(needed)
            .for_each_concurrent(self.gates.limit(), |(key, credential)| async move {
                self.warm(&key, &credential, entra).await;
            })
            .await;
    }

    /// Starts a background refresh of `key`'s token, due for one, unless one is under way.
    pub(super) fn refresh_in_background(
        &self,
        slot: &Arc<Slot>,
        key: &TokenKey,
        credential: &Arc<Credential>,
        entra: &EntraClient,
    ) {
        if slot
            .refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let (cache, slot) = (self.clone(), slot.clone());
        let (key, credential, entra) = (key.clone(), credential.clone(), entra.clone());
        let gate = self.gates.of(&credential.authority);
        tokio::spawn(async move {
            let permit = gate.background().await;
            // A request holding the lock is already getting a token, and one may have got it while
            // this waited for its permit.
            if let Ok(state) = slot.fetch.clone().try_lock_owned()
                && ticks(Instant::now()) >= slot.refresh_due.load(Ordering::Acquire)
            {
                // The outcome is recorded in the slot and logged by `fetch`.
                drop(
                    cache
                        .fetch(state, slot.clone(), key, credential, entra, async {
                            permit
                        })
                        .await,
                );
            }
            slot.refreshing.store(false, Ordering::Release);
        });
    }
}
