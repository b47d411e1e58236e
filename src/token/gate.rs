//! The bound on token requests in flight to one Entra authority, process-wide, with room kept for
//! requests a client is waiting on.
//!
//! Entra throttles applications that call it too often, answering 429 with Retry-After
//! (<https://learn.microsoft.com/en-us/entra/msal/dotnet/advanced/client-and-server-throttling>),
//! "at the application, tenant, or entire service level", commonly "when an application has a
//! large number of requests within or across tenants"
//! (<https://learn.microsoft.com/en-us/entra/identity-platform/test-throttle-service-limits>). A
//! partner listing hundreds of tenants would otherwise warm, and later refresh, all of them at once.
//! The bound is per authority rather than per credential because what Entra sees is this process's
//! burst to that host, however many credentials it comes through; another authority (cloud) is
//! another service.
//!
//! Two kinds of request share it. A client waiting for a missing token (`on_demand`) takes one of
//! the `limit` permits, in arrival order. Warm-up and refresh (`background`) first take one of a
//! smaller pool, at most `limit` less a quarter (at least one kept back whenever `limit` > 1),
//! and only then one of the `limit`: so background work never holds, nor queues for, more than
//! that smaller number, and a client's request waits behind at most the background requests
//! already in flight, never behind the hundreds still queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The permits of one authority.
#[derive(Debug)]
pub(super) struct Gate {
    all: Arc<Semaphore>,
    background: Arc<Semaphore>,
}

/// Held for the whole of one token request.
#[derive(Debug)]
pub(super) struct Permit {
    // Never closed, so acquiring always succeeds; an `Option` only so that nothing here can panic.
    _all: Option<OwnedSemaphorePermit>,
    _background: Option<OwnedSemaphorePermit>,
}

impl Gate {
    fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        let background = limit.saturating_sub((limit / 4).max(1)).max(1);
        Self {
            all: Arc::new(Semaphore::new(limit)),
            background: Arc::new(Semaphore::new(background)),
        }
    }

    /// A permit for a request a client is waiting on.
    pub(super) async fn on_demand(&self) -> Permit {
        Permit {
            _all: self.all.clone().acquire_owned().await.ok(),
            _background: None,
        }
    }

    /// A permit for warm-up or a refresh ahead of expiry.
    pub(super) async fn background(&self) -> Permit {
        let background = self.background.clone().acquire_owned().await.ok();
        Permit {
            _all: self.all.clone().acquire_owned().await.ok(),
            _background: background,
        }
    }
}

/// Every authority's gate, all with the same limit.
#[derive(Debug)]
pub(super) struct Gates {
    inner: Mutex<ByAuthority>,
}

#[derive(Debug)]
struct ByAuthority {
    limit: usize,
    gates: HashMap<Arc<str>, Arc<Gate>>,
}

impl ByAuthority {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            gates: HashMap::new(),
        }
    }
}

impl Gates {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            inner: Mutex::new(ByAuthority::new(limit)),
        }
    }

    /// The gate of `authority`.
    pub(super) fn of(&self, authority: &Arc<str>) -> Arc<Gate> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let limit = inner.limit;
        inner
            .gates
            .entry(authority.clone())
            .or_insert_with(|| Arc::new(Gate::new(limit)))
            .clone()
    }

    /// The limit.
    pub(super) fn limit(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).limit
    }

    /// Sets the limit. A changed limit makes new gates: requests already holding or waiting for a
    /// permit finish under the old one.
    pub(super) fn set_limit(&self, limit: usize) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.limit != limit {
            *inner = ByAuthority::new(limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn background_work_keeps_a_quarter_of_the_permits_back() {
        for (limit, background) in [(1, 1), (2, 1), (3, 2), (4, 3), (16, 12), (100, 75)] {
            let gate = Gate::new(limit);
            assert_eq!(gate.all.available_permits(), limit);
            assert_eq!(gate.background.available_permits(), background, "{limit}");
        }
    }

    #[tokio::test]
    async fn a_client_request_does_not_queue_behind_background_work() {
        let gate = Arc::new(Gate::new(16));
        let mut held = Vec::new();
        for _ in 0..12 {
            held.push(gate.background().await);
        }
        // Hundreds more background requests queue, for the smaller pool only.
        let queued: Vec<_> = (0..500)
            .map(|_| {
                let gate = gate.clone();
                tokio::spawn(async move { drop(gate.background().await) })
            })
            .collect();
        tokio::task::yield_now().await;
        for _ in 0..4 {
            let on_demand = tokio::time::timeout(Duration::from_secs(5), gate.on_demand()).await;
            held.push(on_demand.expect("a client request got a permit at once"));
        }
        assert_eq!(gate.all.available_permits(), 0);
        drop(held);
        for task in queued {
            task.await.unwrap();
        }
        assert_eq!(gate.all.available_permits(), 16);
    }

    #[test]
    fn a_changed_limit_makes_new_gates_and_an_unchanged_one_keeps_them() {
        let gates = Gates::new(16);
        let authority: Arc<str> = "https://login.microsoftonline.com".into();
        let first = gates.of(&authority);
        gates.set_limit(16);
        assert!(Arc::ptr_eq(&first, &gates.of(&authority)));
        gates.set_limit(4);
        let second = gates.of(&authority);
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(second.all.available_permits(), 4);
    }
}
