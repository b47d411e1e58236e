//! One window's limit (per minute or per hour) counted in sub-windows, so that no span of the
//! window's length ever holds more than the limit. Microsoft documents "N calls per minute" and
//! "M calls per hour" without saying where a window starts
//! (<https://learn.microsoft.com/en-us/defender-endpoint/api/exposed-apis-list>), so the budget
//! must hold for every span of that length, not only for spans aligned somewhere.
//!
//! The window is cut into [`GRAINS`] grains (a second of a minute, a minute of an hour) and the
//! calls counted per grain; a call may be counted in grain `g` while grains `g - GRAINS ..= g`
//! hold fewer than the limit. Any span of the window's length lies within `GRAINS + 1`
//! consecutive grains, and its last call was checked against all of them, so it holds at most the
//! limit. The price is that a spent window frees up one grain late at most (61 s for a minute),
//! and memory stays `GRAINS + 1` counters whatever the limit (a ring of the last N instants would
//! take 1,500 of them for an hour of `mde`).
//!
//! Calls are counted at the instant they were reserved for, which never goes back (waiters go in
//! order), so no grain after the newest one counted holds anything.

use std::num::NonZeroU32;
use std::time::Duration;

use tokio::time::Instant;

/// The grains a window is counted in.
pub(crate) const GRAINS: u32 = 60;
/// The grains a span of the window's length can touch: the counters kept.
const SLOTS: usize = GRAINS as usize + 1;

/// One window's counts, on a clock whose zero is the limiter's `origin`.
#[derive(Debug)]
pub(super) struct Window {
    limit: u32,
    /// The grain's length in nanoseconds (rounded up, so that `GRAINS` grains are never shorter
    /// than the window).
    grain: u64,
    /// Calls per grain, grain `g` in slot `g % SLOTS`.
    counts: [u32; SLOTS],
    /// The newest grain counted in.
    newest: u64,
    /// The calls in grains `newest - GRAINS ..= newest`.
    total: u32,
}

impl Window {
    pub(super) fn new(length: Duration, limit: NonZeroU32) -> Self {
        let grain = length.as_nanos().div_ceil(u128::from(GRAINS)).max(1);
        Self {
            limit: limit.get(),
            grain: u64::try_from(grain).unwrap_or(u64::MAX),
            counts: [0; SLOTS],
            newest: 0,
            total: 0,
        }
    }

    fn grain_of(&self, origin: Instant, at: Instant) -> u64 {
        let since = at.saturating_duration_since(origin).as_nanos();
        u64::try_from(since / u128::from(self.grain)).unwrap_or(u64::MAX)
    }

    fn start_of(&self, origin: Instant, grain: u64) -> Instant {
        origin + Duration::from_nanos(grain.saturating_mul(self.grain))
    }

    fn slot(grain: u64) -> usize {
        // The remainder is below SLOTS, so it fits.
        (grain % SLOTS as u64) as usize
    }

    /// The calls in the `SLOTS` grains ending with grain `last` (not before `newest`).
    fn count_through(&self, last: u64) -> u32 {
        let gap = last.saturating_sub(self.newest);
        if gap >= SLOTS as u64 {
            return 0;
        }
        // Grains newest - GRAINS .. newest - GRAINS + gap leave the span.
        let leaving = (0..gap)
            .filter_map(|j| (self.newest + j).checked_sub(u64::from(GRAINS)))
            .map(|g| self.counts[Self::slot(g)])
            .sum::<u32>();
        self.total.saturating_sub(leaving)
    }

    /// The earliest instant, not before `at`, at which this window allows one more call.
    pub(super) fn earliest(&self, origin: Instant, at: Instant) -> Instant {
        let last = self.grain_of(origin, at).max(self.newest);
        let mut count = self.count_through(last);
        if count < self.limit {
            return at;
        }
        // Let the oldest grains of the span leave it until one call fits: grain `g` has left the
        // span that ends with grain `g + SLOTS`.
        let oldest = last.saturating_sub(u64::from(GRAINS));
        for grain in oldest..=self.newest {
            count = count.saturating_sub(self.counts[Self::slot(grain)]);
            if count < self.limit {
                return self.start_of(origin, grain + SLOTS as u64).max(at);
            }
        }
        self.start_of(origin, self.newest + SLOTS as u64).max(at)
    }

    /// Counts a call going at `at`.
    pub(super) fn take(&mut self, origin: Instant, at: Instant) {
        let grain = self.grain_of(origin, at);
        if grain > self.newest {
            let gap = grain - self.newest;
            if gap >= SLOTS as u64 {
                self.counts = [0; SLOTS];
                self.total = 0;
            } else {
                for g in self.newest + 1..=grain {
                    let slot = Self::slot(g);
                    self.total = self.total.saturating_sub(self.counts[slot]);
                    self.counts[slot] = 0;
                }
            }
            self.newest = grain;
        } else if grain + u64::from(GRAINS) < self.newest {
            // Older than the span (a shared store's decision for long ago): nothing to count.
            return;
        }
        let slot = Self::slot(grain);
        self.counts[slot] = self.counts[slot].saturating_add(1);
        self.total = self.total.saturating_add(1);
    }

    /// Gives back the call counted at `at` (one that will not go then after all), if its grain is
    /// still kept.
    pub(super) fn give_back(&mut self, origin: Instant, at: Instant) {
        let grain = self.grain_of(origin, at);
        let slot = Self::slot(grain);
        if grain <= self.newest && grain + u64::from(GRAINS) >= self.newest && self.counts[slot] > 0
        {
            self.counts[slot] -= 1;
            self.total -= 1;
        }
    }

    /// How many calls could be counted at `now` (nothing reserved after it).
    pub(super) fn remaining(&self, origin: Instant, now: Instant) -> u32 {
        let last = self.grain_of(origin, now).max(self.newest);
        self.limit.saturating_sub(self.count_through(last))
    }
}
