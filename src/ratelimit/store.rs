//! The shared rate-limit store: budgets and holds kept in Redis, so that every replica configured
//! with the same store draws on the same budgets. One admission is one round trip: a Lua script
//! (run atomically by Redis, <https://redis.io/docs/latest/develop/programmability/eval-intro/>)
//! applies the same windows as the local limiter (calls counted per grain, so that no span of a
//! window's length holds more than its limit) to the budget's hash on Redis's own clock, so the
//! replicas' clocks need not agree. Each budget is one key, `PREFIX` + `family/app/tenant`, that
//! expires once its state no longer differs from a fresh budget's.
//!
//! The store is an optimisation, not a dependency: when it does not answer within
//! [`STORE_TIMEOUT`], every budget falls back to its local limiter at once (logged once, counted),
//! and a background task reconnects.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script};

use super::{GRAINS, Limits, Remaining};
pub use address::{StoreConfig, StoreUrl};
use scripts::{ADMIT, HOLD, PEEK};

mod address;
mod scripts;

/// How long a store call may take before the request falls back to its local budget: an
/// admission on a healthy Redis takes well under a millisecond, and this is added to the request.
pub(crate) const STORE_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long to wait between connection attempts while the store is unreachable.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);
/// The key prefix unless `server.rate_limit_prefix` says otherwise.
pub(crate) const DEFAULT_PREFIX: &str = "dtp:";

/// Whether the store is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreState {
    /// The first connection has not been made yet; budgets are local meanwhile.
    Connecting,
    /// Budgets draw on the store.
    Connected,
    /// The store did not answer; budgets are local until a reconnection succeeds.
    Unreachable,
}

impl StoreState {
    /// The state's name in `/-/status` and `/-/ready`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Unreachable => "unreachable",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Connected,
            2 => Self::Unreachable,
            _ => Self::Connecting,
        }
    }
}

/// Called with `true` when the store becomes usable and `false` when budgets fall back to local.
pub type OnChange = Box<dyn Fn(bool) + Send + Sync>;

/// The store as the budgets use it.
pub struct Store {
    /// Itself, for the reconnection task.
    this: Weak<Self>,
    config: StoreConfig,
    client: redis::Client,
    connection: Mutex<Option<MultiplexedConnection>>,
    state: AtomicU8,
    /// Whether a reconnection task runs.
    reconnecting: AtomicBool,
    on_change: OnChange,
    admit: Script,
    hold: Script,
    peek: Script,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.config.url)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The store `config` describes; connects in the background (budgets are local until then).
    /// `on_change` hears of every change between the store and the local fall-back.
    pub fn start(config: StoreConfig, on_change: OnChange) -> Arc<Self> {
        let client = redis::Client::open(config.url.url.expose())
            .expect("validation opened this URL with the same client");
        let store = Arc::new_cyclic(|this| Self {
            this: this.clone(),
            config,
            client,
            connection: Mutex::new(None),
            state: AtomicU8::new(0),
            reconnecting: AtomicBool::new(false),
            on_change,
            admit: Script::new(ADMIT),
            hold: Script::new(HOLD),
            peek: Script::new(PEEK),
        });
        store.reconnect();
        store
    }

    /// What it was made with, so that a reload with the same settings keeps it (and its
    /// connection).
    pub(crate) fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Whether budgets draw on it now.
    pub fn state(&self) -> StoreState {
        StoreState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn key(&self, label: &str) -> String {
        let mut key = String::with_capacity(self.config.prefix.len() + label.len());
        key.push_str(&self.config.prefix);
        key.push_str(label);
        key
    }

    /// The connection, while the store is in use.
    fn connection(&self) -> Option<MultiplexedConnection> {
        if self.state() != StoreState::Connected {
            return None;
        }
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Asks the store for a request on budget `label`: `Ok(wait)` when it may go after `wait` (its
    /// cells are taken), `Err(wait)` when it would wait longer than `max_wait` (or at all, when the
    /// local queue is full); `None` when the store is not in use or did not answer in time (then
    /// the budgets fall back to local).
    pub(crate) async fn admit(
        &self,
        label: &str,
        limits: Limits,
        max_wait: Duration,
        queue_has_room: bool,
    ) -> Option<Result<Duration, Duration>> {
        let mut connection = self.connection()?;
        let allowed = if queue_has_room {
            max_wait
        } else {
            Duration::ZERO
        };
        let mut invocation = self.admit.key(self.key(label));
        invocation.arg(micros(allowed)).arg(GRAINS);
        for (length, limit) in limits.windows() {
            match limit.filter(|n| *n > 0) {
                Some(n) => invocation.arg(n).arg(grain_micros(length)),
                None => invocation.arg(0).arg(0),
            };
        }
        let answer = tokio::time::timeout(
            STORE_TIMEOUT,
            invocation.invoke_async::<(u8, i64)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok((go, wait))) => {
                let wait = Duration::from_micros(u64::try_from(wait).unwrap_or(0));
                Some(if go == 1 { Ok(wait) } else { Err(wait) })
            }
            Ok(Err(error)) => {
                self.unreachable(&error.to_string());
                None
            }
            Err(_) => {
                self.unreachable(&format!("no answer within {STORE_TIMEOUT:?}"));
                None
            }
        }
    }

    /// Holds budget `label` for `wait` in the store, in the background.
    pub(crate) fn hold(store: &Arc<Self>, label: String, wait: Duration) {
        let Some(mut connection) = store.connection() else {
            return;
        };
        let store = Arc::clone(store);
        tokio::spawn(async move {
            let mut invocation = store.hold.key(store.key(&label));
            invocation.arg(micros(wait));
            match tokio::time::timeout(
                STORE_TIMEOUT,
                invocation.invoke_async::<i64>(&mut connection),
            )
            .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => store.unreachable(&error.to_string()),
                Err(_) => store.unreachable(&format!("no answer within {STORE_TIMEOUT:?}")),
            }
        });
    }

    /// What the budgets `labels` (with `limits`) have left in the store, in one round trip;
    /// `None` when the store is not in use or did not answer in time.
    pub(crate) async fn peek(&self, labels: &[&str], limits: &[Limits]) -> Option<Vec<Remaining>> {
        let mut connection = self.connection()?;
        let mut invocation = self.peek.prepare_invoke();
        invocation.arg(GRAINS);
        for (label, limits) in labels.iter().zip(limits) {
            invocation.key(self.key(label));
            for (length, limit) in limits.windows() {
                invocation.arg(limit.map_or(0, |_| grain_micros(length)));
            }
        }
        let answer = tokio::time::timeout(
            STORE_TIMEOUT,
            invocation.invoke_async::<Vec<i64>>(&mut connection),
        )
        .await
        .ok()?
        .ok()?;
        let at = |i: usize| {
            answer
                .get(i)
                .copied()
                .map_or(0, |a| a.max(0).unsigned_abs())
        };
        Some(
            limits
                .iter()
                .enumerate()
                .map(|(i, limits)| {
                    // A call counted ahead of now is a request waiting: nothing goes before it.
                    let waiting = at(4 * i + 3) > 0;
                    let window = |w: usize, limit: Option<u32>| {
                        limit.map(|n| {
                            let counted = u32::try_from(at(4 * i + w)).unwrap_or(u32::MAX);
                            if waiting {
                                0
                            } else {
                                n.saturating_sub(counted)
                            }
                        })
                    };
                    let held = Duration::from_micros(at(4 * i + 2));
                    Remaining {
                        minute: window(0, limits.per_minute),
                        hour: window(1, limits.per_hour),
                        held_for: (!held.is_zero()).then_some(held),
                    }
                })
                .collect(),
        )
    }

    /// Falls back to the local budgets (logged and reported once per outage) and starts
    /// reconnecting.
    fn unreachable(&self, why: &str) {
        let was = self.state.swap(2, Ordering::AcqRel);
        if StoreState::from_u8(was) == StoreState::Connected {
            tracing::warn!(
                store = self.config.url.describe(),
                error = why,
                "rate limit store unreachable: budgets are local to this replica until it answers again"
            );
            (self.on_change)(false);
        }
        *self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.reconnect();
    }

    /// Starts the reconnection task unless one runs (outside a tokio runtime, nothing happens:
    /// budgets stay local). The task holds the store weakly, so it ends when the store is dropped
    /// (a reload that changed it).
    fn reconnect(&self) {
        if self.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.reconnecting.store(false, Ordering::Release);
            return;
        };
        let weak = self.this.clone();
        runtime.spawn(async move {
            loop {
                let Some(store) = weak.upgrade() else { return };
                if store.connect().await {
                    store.reconnecting.store(false, Ordering::Release);
                    return;
                }
                // The first connection failed: say so once, as for an outage.
                if store.state() == StoreState::Connecting {
                    store.state.store(2, Ordering::Release);
                    tracing::warn!(
                        store = store.config.url.describe(),
                        "rate limit store unreachable: budgets are local to this replica until it answers"
                    );
                    (store.on_change)(false);
                }
                drop(store);
                tokio::time::sleep(RECONNECT_INTERVAL).await;
            }
        });
    }

    /// One connection attempt with a PING; on success budgets draw on the store again.
    async fn connect(&self) -> bool {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let connected = async {
            let mut connection = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await?;
            Ok::<_, redis::RedisError>(connection)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, connected).await {
            Ok(Ok(connection)) => {
                *self
                    .connection
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(connection);
                let was = self.state.swap(1, Ordering::AcqRel);
                tracing::info!(
                    store = self.config.url.describe(),
                    after = StoreState::from_u8(was).name(),
                    "rate limit store connected: budgets are shared"
                );
                (self.on_change)(true);
                true
            }
            Ok(Err(error)) => {
                tracing::debug!(store = self.config.url.describe(), error = %error, "rate limit store not reachable");
                false
            }
            Err(_) => false,
        }
    }
}

/// A window's grain in microseconds, rounded up as the local windows round theirs.
fn grain_micros(length: Duration) -> u64 {
    micros(length).div_ceil(u64::from(GRAINS)).max(1)
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
