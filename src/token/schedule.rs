//! Token timing as pure functions: when a token is refreshed, until when it may be injected, and how
//! long to back off after a failed token request. Kept free of clocks so it is tested exactly.

use std::time::{Duration, Instant};

/// A token is never injected closer than this to its expiry (or a quarter of its lifetime, for very
/// short-lived tokens), so that it is still valid when the upstream checks it.
pub(crate) const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Without `refresh_in`, tokens are refreshed this long before they expire...
pub(crate) const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// ...except tokens living at least this long, refreshed at half their lifetime, as MSAL does
/// (MSAL Python's `msal/managed_identity.py`).
pub(crate) const LONG_LIVED: Duration = Duration::from_secs(2 * 60 * 60);
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
/// long-lived tokens, and never later than half the lifetime for short-lived ones. None when the
/// expiry is beyond what the clock can hold (a remote number must never overflow `Instant`).
pub(crate) fn schedule(
    sent_at: Instant,
    expires_in: Duration,
    refresh_in: Option<Duration>,
) -> Option<Schedule> {
    let margin = EXPIRY_MARGIN.min(expires_in / 4);
    let usable = expires_in - margin;
    let refresh = match refresh_in {
        Some(refresh_in) => refresh_in,
        None if expires_in >= LONG_LIVED => expires_in / 2,
        None => (expires_in / 2).max(expires_in.saturating_sub(REFRESH_AHEAD)),
    };
    Some(Schedule {
        refresh_at: sent_at.checked_add(refresh.min(usable))?,
        usable_until: sent_at.checked_add(usable)?,
        expires_at: sent_at.checked_add(expires_in)?,
    })
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
        let s = schedule(t0, secs(3599), None).unwrap();
        assert_eq!(s.refresh_at, t0 + secs(3299));
        assert_eq!(s.usable_until, t0 + secs(3569));
        assert_eq!(s.expires_at, t0 + secs(3599));
    }

    #[test]
    fn refresh_in_from_entra_is_honoured() {
        let t0 = Instant::now();
        assert_eq!(
            schedule(t0, secs(86399), Some(secs(43199)))
                .unwrap()
                .refresh_at,
            t0 + secs(43199)
        );
        assert_eq!(
            schedule(t0, secs(3599), Some(secs(600)))
                .unwrap()
                .refresh_at,
            t0 + secs(600)
        );
    }

    #[test]
    fn refresh_in_beyond_the_usable_lifetime_is_capped() {
        let t0 = Instant::now();
        let s = schedule(t0, secs(100), Some(secs(500))).unwrap();
        assert_eq!(s.refresh_at, s.usable_until);
    }

    #[test]
    fn long_lived_tokens_refresh_at_half_their_lifetime() {
        let t0 = Instant::now();
        assert_eq!(
            schedule(t0, secs(24 * 3600), None).unwrap().refresh_at,
            t0 + secs(12 * 3600)
        );
    }

    #[test]
    fn short_lived_tokens_refresh_no_later_than_half_their_lifetime() {
        let t0 = Instant::now();
        let s = schedule(t0, secs(2), None).unwrap();
        assert_eq!(s.refresh_at, t0 + secs(1));
        assert_eq!(s.usable_until, t0 + Duration::from_millis(1500));
        assert_eq!(
            schedule(t0, secs(600), None).unwrap().refresh_at,
            t0 + secs(300)
        );
    }

    #[test]
    fn the_refresh_always_comes_before_the_token_is_retired() {
        let t0 = Instant::now();
        for lifetime in [1, 2, 3, 10, 59, 60, 299, 600, 3599, 7200, 86400] {
            for refresh_in in [None, Some(secs(lifetime / 2)), Some(secs(lifetime * 2))] {
                let s = schedule(t0, secs(lifetime), refresh_in).unwrap();
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
        assert_eq!(schedule(t0, Duration::MAX, None), None);
        assert_eq!(schedule(t0, secs(1 << 63), Some(secs(1))), None);
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
