//! Token timing as pure functions: when a token is refreshed, until when it may be injected, and how
//! long to back off after a failed token request. Kept free of clocks and of randomness (the
//! refresh jitter is an argument; [`spread`] draws it) so it is tested exactly.

use std::time::{Duration, Instant};

/// A token is never injected closer than this to its expiry (or a quarter of its lifetime, for very
/// short-lived tokens), so that it is still valid when the upstream checks it.
pub(crate) const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Without `refresh_in`, tokens are refreshed this long before they expire...
pub(crate) const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// ...except tokens living at least this long, refreshed at half their lifetime, as MSAL does
/// (MSAL Python's `msal/managed_identity.py`).
pub(crate) const LONG_LIVED: Duration = Duration::from_secs(2 * 60 * 60);
/// Tokens acquired together (a partner's tenants, warmed at start-up) would fall due together, and
/// their refreshes reach Entra as one burst; each refresh is put off by a random part of at most
/// this, of at most half the time between the refresh and the end of the usable lifetime (so that
/// at least half of that window is left for the refresh itself), and of at most a tenth of the
/// time until the refresh (an early `refresh_in` from Entra stays early).
pub(crate) const REFRESH_JITTER_MAX: Duration = Duration::from_secs(5 * 60);
/// The first wait after a failed token request; it doubles with each further failure...
pub(crate) const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// ...up to this.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The longest Retry-After honoured (MSAL Python's `msal/throttled_http_client.py` caps it the same
/// way).
pub(crate) const RETRY_AFTER_MAX: Duration = Duration::from_secs(60 * 60);

/// When a token acquired by a request sent at some instant is refreshed and retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// From here on a request triggers a background refresh.
    pub(crate) refresh_at: Instant,
    /// From here on the token is never injected.
    pub(crate) usable_until: Instant,
    /// Entra's expiry, counted from when the request was sent (so never later than the real one).
    pub(crate) expires_at: Instant,
}

/// The schedule of a token whose request was sent at `sent_at`. `refresh_in` is honoured when Entra
/// sends it; otherwise refresh comes [`REFRESH_AHEAD`] before expiry, at half the lifetime for
/// long-lived tokens, and never later than half the lifetime for short-lived ones. Then it is put
/// off by the fraction `jitter / u32::MAX` of the jitter bound (see [`REFRESH_JITTER_MAX`]). None
/// when the expiry is beyond what the clock can hold (a remote number must never overflow
/// `Instant`).
pub(crate) fn schedule(
    sent_at: Instant,
    expires_in: Duration,
    refresh_in: Option<Duration>,
    jitter: u32,
) -> Option<Schedule> {
    let margin = EXPIRY_MARGIN.min(expires_in / 4);
    let usable = expires_in - margin;
    let refresh = match refresh_in {
        Some(refresh_in) => refresh_in,
        None if expires_in >= LONG_LIVED => expires_in / 2,
        None => (expires_in / 2).max(expires_in.saturating_sub(REFRESH_AHEAD)),
    };
    let refresh = refresh.min(usable);
    let bound = REFRESH_JITTER_MAX
        .min((usable - refresh) / 2)
        .min(refresh / 10);
    // At most 5 min * u32::MAX: seconds far below what a Duration holds.
    let refresh = refresh + bound * jitter / u32::MAX;
    Some(Schedule {
        refresh_at: sent_at.checked_add(refresh)?,
        usable_until: sent_at.checked_add(usable)?,
        expires_at: sent_at.checked_add(expires_in)?,
    })
}

/// A random jitter for [`schedule`], from the operating system's generator (no jitter in the
/// unlikely case it fails: a refresh on time is still correct).
pub(crate) fn spread() -> u32 {
    getrandom::u32().unwrap_or(0)
}

/// How long to wait before the next token request after `failures` consecutive failures, at least
/// as long as Entra's Retry-After.
pub(crate) fn backoff(failures: u32, retry_after: Option<Duration>) -> Duration {
    let exponential = BACKOFF_INITIAL
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    retry_after
        .map(|r| r.min(RETRY_AFTER_MAX))
        .map_or(exponential, |r| r.max(exponential))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn one_hour_tokens_refresh_five_minutes_early_and_retire_thirty_seconds_early() {
        let t0 = Instant::now();
        let s = schedule(t0, secs(3599), None, 0).unwrap();
        assert_eq!(s.refresh_at, t0 + secs(3299));
        assert_eq!(s.usable_until, t0 + secs(3569));
        assert_eq!(s.expires_at, t0 + secs(3599));
    }

    #[test]
    fn refresh_in_from_entra_is_honoured() {
        let t0 = Instant::now();
        assert_eq!(
            schedule(t0, secs(86399), Some(secs(43199)), 0)
                .unwrap()
                .refresh_at,
            t0 + secs(43199)
        );
        assert_eq!(
            schedule(t0, secs(3599), Some(secs(600)), 0)
                .unwrap()
                .refresh_at,
            t0 + secs(600)
        );
    }

    #[test]
    fn refresh_in_beyond_the_usable_lifetime_is_capped() {
        let t0 = Instant::now();
        let s = schedule(t0, secs(100), Some(secs(500)), 0).unwrap();
        assert_eq!(s.refresh_at, s.usable_until);
    }

    #[test]
    fn long_lived_tokens_refresh_at_half_their_lifetime() {
        let t0 = Instant::now();
        assert_eq!(
            schedule(t0, secs(24 * 3600), None, 0).unwrap().refresh_at,
            t0 + secs(12 * 3600)
        );
    }

    #[test]
    fn short_lived_tokens_refresh_no_later_than_half_their_lifetime() {
        let t0 = Instant::now();
        let s = schedule(t0, secs(2), None, 0).unwrap();
        assert_eq!(s.refresh_at, t0 + secs(1));
        assert_eq!(s.usable_until, t0 + Duration::from_millis(1500));
        assert_eq!(
            schedule(t0, secs(600), None, 0).unwrap().refresh_at,
            t0 + secs(300)
        );
    }

    #[test]
    fn the_refresh_always_comes_before_the_token_is_retired() {
        let t0 = Instant::now();
        for lifetime in [1, 2, 3, 10, 59, 60, 299, 600, 3599, 7200, 86400] {
            for refresh_in in [None, Some(secs(lifetime / 2)), Some(secs(lifetime * 2))] {
                let s = schedule(t0, secs(lifetime), refresh_in, u32::MAX).unwrap();
                assert!(
                    s.refresh_at <= s.usable_until && s.usable_until < s.expires_at,
                    "{lifetime}"
                );
            }
        }
    }

    #[test]
    fn an_expiry_beyond_the_clock_is_refused_not_a_panic() {
        let t0 = Instant::now();
        assert_eq!(schedule(t0, Duration::MAX, None, u32::MAX), None);
        assert_eq!(schedule(t0, secs(1 << 63), Some(secs(1)), u32::MAX), None);
    }

    #[test]
    fn the_jitter_puts_the_refresh_off_by_at_most_half_the_window_and_five_minutes() {
        let t0 = Instant::now();
        // One hour: refresh at 3299 s, usable until 3569 s, so at most 135 s later.
        let latest = schedule(t0, secs(3599), None, u32::MAX).unwrap();
        assert_eq!(latest.refresh_at, t0 + secs(3299 + 135));
        assert_eq!(latest.usable_until, t0 + secs(3569));
        let middle = schedule(t0, secs(3599), None, u32::MAX / 2).unwrap();
        assert!(middle.refresh_at > t0 + secs(3299) && middle.refresh_at < latest.refresh_at);
        // A day: refresh at half of it, at most five minutes later.
        assert_eq!(
            schedule(t0, secs(86400), None, u32::MAX)
                .unwrap()
                .refresh_at,
            t0 + secs(43200) + REFRESH_JITTER_MAX
        );
        // An early refresh_in from Entra stays early: a tenth of it at most.
        assert_eq!(
            schedule(t0, secs(3599), Some(secs(10)), u32::MAX)
                .unwrap()
                .refresh_at,
            t0 + secs(11)
        );
        // Entra's refresh_in past the usable lifetime leaves no window to spread over.
        let capped = schedule(t0, secs(100), Some(secs(500)), u32::MAX).unwrap();
        assert_eq!(capped.refresh_at, capped.usable_until);
    }

    #[test]
    fn tokens_acquired_together_fall_due_at_different_instants() {
        let t0 = Instant::now();
        let due: std::collections::BTreeSet<Instant> = (0..1000)
            .map(|_| schedule(t0, secs(3599), None, spread()).unwrap().refresh_at)
            .collect();
        assert!(due.len() > 900, "{} distinct refresh instants", due.len());
        let (first, last) = (*due.first().unwrap(), *due.last().unwrap());
        assert!(first >= t0 + secs(3299) && last <= t0 + secs(3299 + 135));
        assert!(last - first > secs(60), "spread over {:?}", last - first);
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_honours_retry_after() {
        assert_eq!(backoff(1, None), secs(1));
        assert_eq!(backoff(2, None), secs(2));
        assert_eq!(backoff(4, None), secs(8));
        assert_eq!(backoff(30, None), BACKOFF_MAX);
        assert_eq!(backoff(1, Some(secs(20))), secs(20));
        assert_eq!(backoff(7, Some(secs(20))), secs(60));
        assert_eq!(backoff(1, Some(secs(999_999))), RETRY_AFTER_MAX);
    }
}
