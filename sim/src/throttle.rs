//! Microsoft's API quotas as the simulator enforces them: calls per minute and per hour, counted
//! per application and tenant ("throttling is always on the combination of application+tenant",
//! <https://github.com/MicrosoftDocs/microsoft-365-docs/issues/10124>), or per tenant alone for
//! Cloud Apps ("30 requests per minute per tenant",
//! <https://learn.microsoft.com/en-us/defender-cloud-apps/api-introduction>). A call past a quota
//! gets 429 with `Retry-After` (the seconds until its window ends) and the body Defender sends,
//! `{"error":{"code":"429","message":"API calls quota exceeded! maximum allowed 100 per
//! 00:01:00",...}}` (<https://github.com/MicrosoftDocs/microsoft-365-docs/issues/4616>); Graph's
//! is its own error shape with code `TooManyRequests`
//! (<https://learn.microsoft.com/en-us/graph/throttling>). Refused calls do not count.
//!
//! Microsoft documents "100 calls per minute and 1500 calls per hour" without saying where a
//! minute or an hour starts (<https://learn.microsoft.com/en-us/defender-endpoint/api/exposed-apis-list>),
//! so the simulator takes the strictest reading: no span of a minute (or an hour), wherever it
//! starts, may hold more than the quota (a sliding window over the calls' instants). Windows fixed
//! at some start would let twice the quota through across a boundary, which Microsoft may not.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::api_error::error;
use super::token::Api;

/// One API's quota: calls per minute and per hour (`None`: not limited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimQuota {
    /// Calls per minute.
    pub per_minute: Option<u32>,
    /// Calls per hour.
    pub per_hour: Option<u32>,
}

impl SimQuota {
    /// No quota.
    pub const UNLIMITED: Self = Self {
        per_minute: None,
        per_hour: None,
    };
}

/// The quota of each simulated API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimQuotas {
    /// The length of the window `per_minute` counts over: a minute, as Microsoft's; tests that
    /// must see several windows in seconds shorten it (with the proxy's custom `window`).
    pub minute: Duration,
    /// Defender for Endpoint, per app and tenant.
    pub mde: SimQuota,
    /// Defender XDR, per app and tenant.
    pub xdr: SimQuota,
    /// Graph security, per app and tenant.
    pub graph: SimQuota,
    /// Defender for Cloud Apps, per tenant.
    pub mdca: SimQuota,
}

impl SimQuotas {
    /// Microsoft's documented numbers: MDE 100/min and 1,500/h
    /// (<https://learn.microsoft.com/en-us/defender-endpoint/api/get-alerts>), XDR incidents 50/min
    /// and 1,500/h (<https://learn.microsoft.com/en-us/defender-xdr/api-list-incidents>), Graph
    /// security 150/min (<https://learn.microsoft.com/en-us/graph/throttling-limits>), Cloud Apps
    /// 30/min (<https://learn.microsoft.com/en-us/defender-cloud-apps/api-introduction>).
    pub const MICROSOFT: Self = Self {
        minute: MINUTE,
        mde: SimQuota {
            per_minute: Some(100),
            per_hour: Some(1500),
        },
        xdr: SimQuota {
            per_minute: Some(50),
            per_hour: Some(1500),
        },
        graph: SimQuota {
            per_minute: Some(150),
            per_hour: None,
        },
        mdca: SimQuota {
            per_minute: Some(30),
            per_hour: None,
        },
    };

    /// No quotas at all (for load tests of the proxy itself).
    pub const UNLIMITED: Self = Self {
        minute: MINUTE,
        mde: SimQuota::UNLIMITED,
        xdr: SimQuota::UNLIMITED,
        graph: SimQuota::UNLIMITED,
        mdca: SimQuota::UNLIMITED,
    };

    fn of(&self, api: Api) -> SimQuota {
        match api {
            Api::Mde => self.mde,
            Api::Xdr => self.xdr,
            Api::Graph => self.graph,
            Api::Mdca => self.mdca,
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(60 * 60);

/// Per window (minute, hour), the instants of the calls still in it.
type Calls = [VecDeque<Instant>; 2];

/// The counts of every (API, app, tenant).
#[derive(Debug)]
pub(super) struct Throttle {
    quotas: SimQuotas,
    windows: Mutex<HashMap<(Api, String, String), Calls>>,
}

impl Throttle {
    pub(super) fn new(quotas: SimQuotas) -> Self {
        Self {
            quotas,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a call of `app` in `tenant` to `api` (`None`), or gives the 429 for it when a quota
    /// is spent. Cloud Apps counts per tenant, whatever `app` is.
    pub(super) fn refusal(&self, api: Api, app: &str, tenant: &str) -> Option<Response> {
        let quota = self.quotas.of(api);
        let limits = [quota.per_minute, quota.per_hour];
        if limits.iter().all(Option::is_none) {
            return None;
        }
        let lengths = [self.quotas.minute, HOUR];
        let app = if api == Api::Mdca { "*" } else { app };
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let calls = windows
            .entry((api, app.to_ascii_lowercase(), tenant.to_ascii_lowercase()))
            .or_default();
        for (i, window) in calls.iter_mut().enumerate() {
            let Some(limit) = limits[i] else { continue };
            while window
                .front()
                .is_some_and(|first| now.duration_since(*first) >= lengths[i])
            {
                window.pop_front();
            }
            if window.len() >= limit as usize {
                // The call that leaves the window first frees a place.
                let left = lengths[i] - now.duration_since(window[0]);
                return Some(throttled(api, limit, &period(lengths[i]), left));
            }
        }
        for (i, window) in calls.iter_mut().enumerate() {
            if limits[i].is_some() {
                window.push_back(now);
            }
        }
        None
    }
}

/// A window's length as Defender's message writes it: `00:01:00`.
fn period(length: Duration) -> String {
    let seconds = length.as_secs();
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn throttled(api: Api, limit: u32, period: &str, left: Duration) -> Response {
    let mut response = match api {
        Api::Graph => error(
            api,
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests.",
        ),
        _ => error(
            api,
            StatusCode::TOO_MANY_REQUESTS,
            "429",
            &format!("API calls quota exceeded! maximum allowed {limit} per {period}"),
        ),
    };
    let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas(per_minute: u32) -> SimQuotas {
        SimQuotas {
            mde: SimQuota {
                per_minute: Some(per_minute),
                per_hour: None,
            },
            ..SimQuotas::MICROSOFT
        }
    }

    #[test]
    fn a_spent_quota_answers_429_with_retry_after_per_app_and_tenant() {
        let throttle = Throttle::new(quotas(2));
        assert!(throttle.refusal(Api::Mde, "app", "t1").is_none());
        assert!(throttle.refusal(Api::Mde, "app", "t1").is_none());
        let refused = throttle.refusal(Api::Mde, "app", "t1").unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = refused.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert!(
            throttle.refusal(Api::Mde, "app", "t2").is_none(),
            "another tenant"
        );
        assert!(
            throttle.refusal(Api::Mde, "other", "t1").is_none(),
            "another app"
        );
    }

    #[test]
    fn cloud_apps_counts_per_tenant_whatever_the_app() {
        let throttle = Throttle::new(SimQuotas {
            mdca: SimQuota {
                per_minute: Some(1),
                per_hour: None,
            },
            ..SimQuotas::MICROSOFT
        });
        assert!(throttle.refusal(Api::Mdca, "app", "t1").is_none());
        assert!(throttle.refusal(Api::Mdca, "other", "t1").is_some());
    }

    #[test]
    fn a_quota_holds_for_every_span_of_its_window_not_only_from_the_first_call() {
        let throttle = Throttle::new(SimQuotas {
            minute: Duration::from_secs(1),
            ..quotas(2)
        });
        assert!(throttle.refusal(Api::Mde, "app", "t1").is_none());
        std::thread::sleep(Duration::from_millis(600));
        assert!(throttle.refusal(Api::Mde, "app", "t1").is_none());
        std::thread::sleep(Duration::from_millis(500));
        // 1.1 s after the first call: a window fixed at the first call would have begun again,
        // but the last second still holds the second call, so one more fits and then none.
        assert!(throttle.refusal(Api::Mde, "app", "t1").is_none());
        assert!(throttle.refusal(Api::Mde, "app", "t1").is_some());
    }

    #[test]
    fn unlimited_quotas_never_throttle() {
        let throttle = Throttle::new(SimQuotas::UNLIMITED);
        for _ in 0..1000 {
            assert!(throttle.refusal(Api::Mde, "app", "t1").is_none());
        }
    }
}
