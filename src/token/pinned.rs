//! Slots pinned for keys known when the routes are built: a non-partner route's one token is held
//! by the route itself, so that a request reaches it without hashing its key, and by a small map
//! of the cache's own (outside moka's eviction), so that everything asking by key (readiness,
//! status, the identity endpoint, warm-up) finds the same slot.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::{AccessToken, EntraClient, Slot, TokenCache, TokenError, TokenKey};
use crate::credential::Credential;

/// A slot the routes hold for their key. Cloning it shares the slot.
#[derive(Clone)]
pub(crate) struct PinnedSlot(pub(super) Arc<Slot>);

impl fmt::Debug for PinnedSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinnedSlot")
    }
}

/// A request's token in the cache: its key and, for a pinned key, the slot the route holds.
pub(crate) struct TokenEntry<'r> {
    key: Cow<'r, TokenKey>,
    slot: Option<&'r PinnedSlot>,
}

impl<'r> TokenEntry<'r> {
    /// The entry of `key`, found by its key.
    pub(crate) fn keyed(key: Cow<'r, TokenKey>) -> Self {
        Self { key, slot: None }
    }

    /// The entry of `key`, held in `slot`.
    pub(crate) fn pinned(key: &'r TokenKey, slot: &'r PinnedSlot) -> Self {
        Self {
            key: Cow::Borrowed(key),
            slot: Some(slot),
        }
    }
}

impl Deref for TokenEntry<'_> {
    type Target = TokenKey;

    fn deref(&self) -> &TokenKey {
        &self.key
    }
}

impl TokenCache {
    /// The slot to pin for `key`: the one pinned for it now (so that a reload keeping the key
    /// keeps its token), else moka's (say, one the identity endpoint filled), else a new one. It
    /// is pinned only when [`TokenCache::keep_pinned`] is given it, once the configuration that
    /// holds it is built.
    pub(crate) fn pin(&self, key: &TokenKey) -> PinnedSlot {
        let pinned = self.pinned.read().unwrap_or_else(|e| e.into_inner());
        let slot = pinned
            .get(key)
            .cloned()
            .or_else(|| self.slots.get(key))
            .unwrap_or_else(|| Arc::new(Slot::new()));
        PinnedSlot(slot)
    }

    /// Makes `slots` the pinned ones (the running routes'), dropping those no route holds any
    /// more; returns how many were dropped. A key moved out of moka leaves it, so that one key has
    /// one slot.
    pub(crate) fn keep_pinned<'s>(
        &self,
        slots: impl IntoIterator<Item = (&'s TokenKey, &'s PinnedSlot)>,
    ) -> usize {
        let next: HashMap<TokenKey, Arc<Slot>> = slots
            .into_iter()
            .map(|(key, slot)| (key.clone(), Arc::clone(&slot.0)))
            .collect();
        let moved: Vec<TokenKey> = next.keys().cloned().collect();
        let dropped = {
            let mut pinned = self.pinned.write().unwrap_or_else(|e| e.into_inner());
            let kept: HashSet<&TokenKey> = next.keys().collect();
            let dropped = pinned.keys().filter(|key| !kept.contains(key)).count();
            drop(kept);
            *pinned = next;
            dropped
        };
        // Only now: a lookup meanwhile found moka's slot, the one pinned.
        for key in &moved {
            self.slots.invalidate(key);
        }
        dropped
    }

    /// `key`'s slot: the pinned one, else moka's (made if missing).
    pub(super) fn slot(&self, key: &TokenKey) -> Arc<Slot> {
        let pinned = self
            .pinned
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned();
        pinned.unwrap_or_else(|| self.slots.get_with_by_ref(key, || Arc::new(Slot::new())))
    }

    /// [`TokenCache::token`] for a request's `entry`: a pinned one from the slot its route holds,
    /// without a lookup.
    pub(crate) async fn token_for(
        &self,
        entry: &TokenEntry<'_>,
        credential: &Arc<Credential>,
        entra: &EntraClient,
    ) -> Result<Arc<AccessToken>, Arc<TokenError>> {
        self.token_in(&self.entry_slot(entry), entry, credential, entra)
            .await
    }

    /// `entry`'s slot, if it has one: the one its route holds, else the pinned one or moka's.
    pub(super) fn existing_slot(&self, entry: &TokenEntry<'_>) -> Option<Arc<Slot>> {
        if let Some(slot) = entry.slot {
            return Some(Arc::clone(&slot.0));
        }
        self.pinned
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&*entry.key)
            .cloned()
            .or_else(|| self.slots.get(&*entry.key))
    }

    /// The route's slot of `entry`, else [`TokenCache::slot`].
    fn entry_slot<'e>(&self, entry: &'e TokenEntry<'_>) -> Cow<'e, Arc<Slot>> {
        match entry.slot {
            Some(slot) => Cow::Borrowed(&slot.0),
            None => Cow::Owned(self.slot(&entry.key)),
        }
    }

    /// How many slots are pinned.
    #[cfg(test)]
    pub(crate) fn pinned_len(&self) -> usize {
        self.pinned.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether moka holds a slot for `key`.
    #[cfg(test)]
    pub(crate) fn in_moka(&self, key: &TokenKey) -> bool {
        self.slots.contains_key(key)
    }
}
