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

use std::collections::HashMap;
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

/// One window's count: when it began and how many calls it has let through.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    calls: u32,
}

/// The counts of every (API, app, tenant).
#[derive(Debug)]
pub(super) struct Throttle {
    quotas: SimQuotas,
    windows: Mutex<HashMap<(Api, String, String), [Window; 2]>>,
}

const WINDOWS: [(Duration, &str); 2] = [
    (Duration::from_secs(60), "00:01:00"),
    (Duration::from_secs(60 * 60), "01:00:00"),
];

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
        let app = if api == Api::Mdca { "*" } else { app };
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let counts = windows
            .entry((api, app.to_ascii_lowercase(), tenant.to_ascii_lowercase()))
            .or_insert(
                [Window {
                    start: now,
                    calls: 0,
                }; 2],
            );
        for (i, ((length, _), window)) in WINDOWS.iter().zip(counts.iter_mut()).enumerate() {
            if now.duration_since(window.start) >= *length {
                *window = Window {
                    start: now,
                    calls: 0,
                };
            }
            if let Some(limit) = limits[i]
                && window.calls >= limit
            {
                let left = *length - now.duration_since(window.start);
                return Some(throttled(api, limit, WINDOWS[i].1, left));
            }
        }
        for window in counts.iter_mut() {
            window.calls += 1;
        }
        None
    }
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
    fn unlimited_quotas_never_throttle() {
        let throttle = Throttle::new(SimQuotas::UNLIMITED);
        for _ in 0..1000 {
            assert!(throttle.refusal(Api::Mde, "app", "t1").is_none());
        }
    }
}
