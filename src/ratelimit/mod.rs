//! Client-side rate limits: per-minute and per-hour windows matching Microsoft's documented
//! limits, a bounded wait queue, and holding a budget after an upstream 429 until its Retry-After
//! has passed (issue 4, item 6). What a limiter is kept for (the family, app and tenant Microsoft
//! counts) is [`budgets`]; sharing budgets between replicas through Redis is [`store`].
//!
//! Each limited window is a [`window::Window`]: no span of its length ever holds more than its
//! limit, so a fresh budget lets its whole per-minute limit through at once, and the next request
//! goes once those calls have left the window (not one interval later, which would let twice the
//! limit into some minute). A request that cannot go at once reserves the earliest instant at
//! which every window allows it, never before a request reserved earlier, so waiters go in arrival
//! order and the wait is known before the request is queued; that is what lets
//! [`RateLimiter::acquire`] refuse at once when the wait would be too long.
//!
//! Time is [`tokio::time::Instant`] (the same as `std::time::Instant` outside paused-time tests), so
//! the tests run on tokio's paused clock and are exact.
//!
//! This module does not answer requests or touch metrics: the caller turns a [`Refusal`] into a 429
//! problem with `Retry-After`, records the [`Admission`], and holds the budget when the upstream
//! answers 429.

pub mod budgets;
mod spec;
pub mod store;
mod window;

pub use spec::RateLimit;
pub(crate) use spec::RateLimitSpec;
pub(crate) use window::GRAINS;

use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use tokio::time::Instant;

use window::Window;

/// A minute: the window `per_minute` counts over unless a custom limit's `window` says otherwise.
pub(crate) const MINUTE: Duration = Duration::from_secs(60);
/// An hour: the window `per_hour` counts over.
pub(crate) const HOUR: Duration = Duration::from_secs(60 * 60);

/// Calls allowed per window. At least one must be given, and each must be greater than zero
/// ([`RateLimitSpec::resolve`] checks both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Calls per minute (per `minute`); also the largest burst let through at once.
    pub per_minute: Option<u32>,
    /// Calls per hour.
    pub per_hour: Option<u32>,
    /// The length of the window `per_minute` counts over: [`MINUTE`] for every preset, shorter
    /// only where a custom limit's `window` says so.
    pub minute: Duration,
}

impl Limits {
    /// Each window's length and limit: the minute's, then the hour's.
    pub(crate) fn windows(&self) -> [(Duration, Option<u32>); 2] {
        [(self.minute, self.per_minute), (HOUR, self.per_hour)]
    }
}

/// No client-side limit: a limiter with it only holds requests after an upstream 429.
pub(crate) const UNLIMITED: Limits = limits(None, None);

const fn limits(per_minute: Option<u32>, per_hour: Option<u32>) -> Limits {
    Limits {
        per_minute,
        per_hour,
        minute: MINUTE,
    }
}

/// Why a request may not go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Waiting would take longer than `max_wait`; the client should come back after this long.
    TooLong {
        /// How long the request would have had to wait.
        retry_after: Duration,
    },
    /// The wait queue is full (`max_queue` requests already waiting).
    QueueFull {
        /// How long the request would have had to wait.
        retry_after: Duration,
    },
}

/// What `acquire` did, for metrics: whether the request had to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The request went at once.
    Immediate,
    /// The request went after waiting this long.
    Waited(Duration),
}

/// One budget's limiter. Shared by all requests drawing on the budget (`&self` methods; Send +
/// Sync).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The longest a request may wait (a reload may change it; the windows stay).
    max_wait: Duration,
    /// The most requests waiting at once.
    max_queue: usize,
    /// Zero on the windows' clock: when the limiter was made.
    origin: Instant,
    /// The per-minute and per-hour windows that are limited.
    windows: Vec<Window>,
    /// No request goes before this instant (set after an upstream 429).
    held_until: Option<Instant>,
    /// The latest instant a request was counted at: later requests go no earlier (in order).
    last: Instant,
    /// Requests that reserved a later instant and have not gone, been refused or been dropped.
    waiting: usize,
}

/// What a limiter has left: requests that could go now in each limited window, and how long a
/// hold after an upstream 429 still lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Remaining {
    /// Requests that could go now as far as the per-minute limit goes (`None`: not limited).
    pub(crate) minute: Option<u32>,
    /// The same for the per-hour limit.
    pub(crate) hour: Option<u32>,
    /// The time left of a hold, if one is in force.
    pub(crate) held_for: Option<Duration>,
}

impl State {
    /// The earliest instant, not before `not_before`, the hold or the last reservation, at which
    /// every window allows a request. Each window's answer only gets truer later (calls only
    /// leave it), so one pass over them is enough.
    fn earliest(&self, not_before: Instant) -> Instant {
        let start = self
            .held_until
            .map_or(not_before, |until| until.max(not_before))
            .max(self.last);
        self.windows
            .iter()
            .fold(start, |at, window| window.earliest(self.origin, at))
    }

    /// Counts a request going at `at` in every window.
    fn take(&mut self, at: Instant) {
        for window in &mut self.windows {
            window.take(self.origin, at);
        }
        self.last = self.last.max(at);
    }

    /// Gives back the request counted at `at`, which goes later after all.
    fn give_back(&mut self, at: Instant) {
        for window in &mut self.windows {
            window.give_back(self.origin, at);
        }
    }
}

/// A place in the wait queue; given back when dropped, so a cancelled waiter frees it.
struct Slot<'a> {
    limiter: &'a RateLimiter,
    /// The instant counted in the windows.
    at: Instant,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.limiter.state().waiting -= 1;
    }
}

impl RateLimiter {
    /// A limiter with `limits`; a request waits at most `max_wait`, and at most `max_queue` requests
    /// wait at once. A window whose limit is `None` or zero is not limited ([`RateLimitSpec::resolve`]
    /// refuses zero, so a validated config never has one).
    pub(crate) fn new(limits: Limits, max_wait: Duration, max_queue: usize) -> Self {
        let now = Instant::now();
        let windows = limits
            .windows()
            .into_iter()
            .filter_map(|(length, limit)| Some(Window::new(length, NonZeroU32::new(limit?)?)))
            .collect();
        Self {
            limits,
            state: Mutex::new(State {
                max_wait,
                max_queue,
                origin: now,
                windows,
                held_until: None,
                last: now,
                waiting: 0,
            }),
        }
    }

    /// The limits it was made with.
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Sets the longest wait and the queue length (a reload that keeps the budget may change
    /// them); the spent allowance and any hold stay.
    pub(crate) fn reconfigure(&self, max_wait: Duration, max_queue: usize) {
        let mut state = self.state();
        state.max_wait = max_wait;
        state.max_queue = max_queue;
    }

    /// Whether a request that would have to wait may join the queue now.
    pub(crate) fn queue_has_room(&self) -> bool {
        let state = self.state();
        state.waiting < state.max_queue
    }

    /// The longest a request may wait.
    pub(crate) fn max_wait(&self) -> Duration {
        self.state().max_wait
    }

    /// What is left now in each window (none while a request waits: it goes first), and the hold.
    pub(crate) fn remaining(&self) -> Remaining {
        let now = Instant::now();
        let state = self.state();
        let mut windows = state.windows.iter();
        let mut next = |limit: Option<u32>| {
            let window = limit.and_then(|_| windows.next())?;
            Some(if state.last > now {
                0
            } else {
                window.remaining(state.origin, now)
            })
        };
        Remaining {
            minute: next(self.limits.per_minute),
            hour: next(self.limits.per_hour),
            held_for: state
                .held_until
                .and_then(|until| until.checked_duration_since(now))
                .filter(|left| !left.is_zero()),
        }
    }

    /// Waits (asynchronously, tokio) until the request may go: both the per-minute and the per-hour
    /// windows must allow it, and the route must not be held by an upstream 429. Refuses at once,
    /// without waiting, when the wait would exceed `max_wait` or the queue is full; a request already
    /// waiting is refused when a hold set meanwhile would keep it beyond `max_wait`. A request that
    /// waited and then is cancelled (its future dropped) gives its place back; the call it counted
    /// stays counted.
    pub(crate) async fn acquire(&self) -> Result<Admission, Refusal> {
        let arrived = Instant::now();
        let Some(slot) = self.reserve(arrived)? else {
            return Ok(Admission::Immediate);
        };
        self.wait_in_queue(slot, arrived).await
    }

    /// Records a request that a shared store admitted to go after `wait` (the store's decision
    /// stands: this counts it and takes a queue place without checking them), and waits that long,
    /// or until a hold set meanwhile ends. The local windows follow what this replica sends, so a
    /// fall-back to them does not start from a full allowance.
    pub(crate) async fn admitted(&self, wait: Duration) -> Result<Admission, Refusal> {
        let arrived = Instant::now();
        let at = arrived + wait;
        let slot = {
            let mut state = self.state();
            state.take(at);
            if wait.is_zero() {
                return Ok(Admission::Immediate);
            }
            state.waiting += 1;
            Slot { limiter: self, at }
        };
        self.wait_in_queue(slot, arrived).await
    }

    async fn wait_in_queue(
        &self,
        mut slot: Slot<'_>,
        arrived: Instant,
    ) -> Result<Admission, Refusal> {
        loop {
            tokio::time::sleep_until(slot.at).await;
            // An upstream 429 may have held the route while this request waited; going before the
            // Retry-After only earns another 429
            // (https://learn.microsoft.com/en-us/defender-endpoint/api/common-errors). The request
            // then goes later than it was counted at, so it is counted again at the instant it
            // will go (which keeps every window true), or refused.
            let now = Instant::now();
            let mut state = self.state();
            match state.held_until {
                Some(held) if held > now => {
                    state.give_back(slot.at);
                    let at = state.earliest(held);
                    if at.saturating_duration_since(arrived) > state.max_wait {
                        drop(state);
                        return Err(Refusal::TooLong {
                            retry_after: at - now,
                        });
                    }
                    state.take(at);
                    slot.at = at;
                }
                _ => break,
            }
        }
        drop(slot);
        Ok(Admission::Waited(arrived.elapsed()))
    }

    /// Counts the request in every window at the earliest instant they and the hold allow: `None`
    /// when that is now, else a queue slot for that instant. Counts nothing when it refuses.
    fn reserve(&self, now: Instant) -> Result<Option<Slot<'_>>, Refusal> {
        let mut state = self.state();
        let at = state.earliest(now);
        let wait = at - now;
        if wait > state.max_wait {
            return Err(Refusal::TooLong { retry_after: wait });
        }
        if !wait.is_zero() && state.waiting >= state.max_queue {
            return Err(Refusal::QueueFull { retry_after: wait });
        }
        state.take(at);
        if wait.is_zero() {
            return Ok(None);
        }
        state.waiting += 1;
        Ok(Some(Slot { limiter: self, at }))
    }

    /// Holds the route until `until` (after an upstream 429 with Retry-After): later `acquire`s wait
    /// until then (or are refused when that is beyond `max_wait`). A later call never shortens an
    /// existing hold.
    pub(crate) fn hold_until(&self, until: std::time::Instant) {
        let until = Instant::from_std(until);
        let mut state = self.state();
        state.held_until = Some(state.held_until.map_or(until, |held| held.max(until)));
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, and every update leaves the state consistent, so
        // a poisoned lock (a panic elsewhere in that thread) is safe to keep using.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The longest an upstream's Retry-After holds a budget unless `server.retry_after_max` says
/// otherwise: a remote number must not stop a budget for hours (or overflow the clock). Entra's is
/// capped at an hour in the token cache; Defender asks for seconds to minutes.
pub(crate) const UPSTREAM_RETRY_AFTER_MAX: Duration = Duration::from_secs(10 * 60);

/// Parses a Retry-After header value: delay-seconds or an HTTP-date (RFC 9110 section 10.2.3);
/// `None` if neither. A date in the past is no delay; any delay is capped at `max`.
pub(crate) fn parse_retry_after(
    value: &HeaderValue,
    now: SystemTime,
    max: Duration,
) -> Option<Duration> {
    // RFC 9110 section 5.5: surrounding whitespace is not part of a field value.
    let value = value.to_str().ok()?.trim();
    // delay-seconds is `1*DIGIT`; `u64::from_str` alone would also take a leading `+`. Too many
    // digits for a u64 is still a (very long) delay, so it gets the cap.
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.parse().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(max));
    }
    // httpdate accepts the IMF-fixdate and the two obsolete forms recipients must accept
    // (RFC 9110 section 5.6.7).
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO).min(max))
}

#[cfg(test)]
mod retry_after_tests;
#[cfg(test)]
mod tests;
