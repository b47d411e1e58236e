//! Rate limits as configured: a preset (Microsoft's documented limits, and whether Microsoft
//! counts them per app and tenant or per tenant alone) or explicit limits, optionally with a named
//! budget, resolved to a [`RateLimit`].

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{Limits, MINUTE, limits};

/// A named preset or explicit limits, as written in the config: `rate_limit = "mde"` or
/// `rate_limit = { per_minute = 100, per_hour = 1500 }`, optionally with `budget = "NAME"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum RateLimitSpec {
    /// One of the presets named in [`RateLimitSpec::resolve`].
    Preset(String),
    /// Explicit limits.
    Custom(CustomLimits),
}

/// Explicit limits as written: the calls per window, and the budget they draw on if it is named.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CustomLimits {
    per_minute: Option<u32>,
    per_hour: Option<u32>,
    /// The window `per_minute` counts over, if not a minute: for an API documented with a
    /// shorter window.
    #[serde(default, with = "humantime_serde")]
    window: Option<Duration>,
    /// Routes naming the same budget (with the same limits) share it, per app and tenant.
    budget: Option<String>,
}

/// A route's resolved rate limit: its limits and the family of budgets it draws on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls allowed per window.
    pub limits: Limits,
    /// The family: the preset's name, `custom-…` for explicit limits (which routes with the same
    /// limits share), or `budget-NAME` for an explicitly named budget.
    pub family: Arc<str>,
    /// Whether Microsoft counts this family per tenant alone, whatever the app (advanced hunting,
    /// Cloud Apps), rather than per app and tenant.
    pub per_tenant: bool,
}

/// The shortest `window` a custom limit may have: its grains (a sixtieth) stay many
/// milliseconds long.
const MIN_WINDOW: Duration = Duration::from_secs(1);

/// The longest name `budget = "NAME"` may have.
const MAX_BUDGET_NAME: usize = 64;

/// Whether Microsoft counts a preset's calls per app and tenant or per tenant alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    /// Per application and tenant: "throttling is always on the combination of
    /// application+tenant" (Microsoft, https://github.com/MicrosoftDocs/microsoft-365-docs/issues/10124).
    AppAndTenant,
    /// Per tenant, shared by every app of the tenant.
    Tenant,
}

/// The presets, with the limits Microsoft documents (sources below) and what it counts them by.
const PRESETS: [(&str, Limits, Counted); 8] = [
    // Most Defender for Endpoint APIs (list alerts, isolate machine, indicators); see e.g.
    // https://learn.microsoft.com/en-us/defender-endpoint/api/get-alerts.
    ("mde", limits(Some(100), Some(1500)), Counted::AppAndTenant),
    // MDE `POST /api/advancedqueries/run` is 45/min and 1,500/h per tenant
    // (https://learn.microsoft.com/en-us/defender-endpoint/api/run-advanced-query-api); Defender XDR
    // `POST /api/advancedhunting/run` documents "at least 45 calls per minute per tenant"
    // (https://learn.microsoft.com/en-us/defender-xdr/api-advanced-hunting).
    (
        "advanced-hunting",
        limits(Some(45), Some(1500)),
        Counted::Tenant,
    ),
    // Graph `POST /security/runHuntingQuery`, where advanced hunting is moving (the MDE and XDR
    // APIs above stop returning data on 2027-02-01): "up to at least 45 calls per minute per
    // tenant", varying with tenant size; no hourly figure is documented in English
    // (https://learn.microsoft.com/en-us/graph/api/resources/security-api-overview).
    ("graph-hunting", limits(Some(45), None), Counted::Tenant),
    // Defender XDR incidents: 50 calls per minute or 1,500 per hour
    // (https://learn.microsoft.com/en-us/defender-xdr/api-list-incidents).
    (
        "xdr-incidents",
        limits(Some(50), Some(1500)),
        Counted::AppAndTenant,
    ),
    // Defender for Cloud Apps: "30 requests per minute per tenant" for all API requests
    // (https://learn.microsoft.com/en-us/defender-cloud-apps/api-introduction).
    ("mdca", limits(Some(30), None), Counted::Tenant),
    // Graph `/security` alerts, securityActions, secureScore: 150 per minute per app per tenant
    // (https://learn.microsoft.com/en-us/graph/throttling-limits).
    (
        "graph-security",
        limits(Some(150), None),
        Counted::AppAndTenant,
    ),
    // MDE `runliveresponse`: 10 calls per minute, 429 beyond
    // (https://learn.microsoft.com/en-us/defender-endpoint/api/run-live-response).
    (
        "live-response",
        limits(Some(10), None),
        Counted::AppAndTenant,
    ),
    // MDE investigation package download (`getPackageUri`): 2 calls per minute and 120 per hour
    // (https://learn.microsoft.com/en-us/defender-endpoint/api/get-package-sas-uri).
    (
        "investigation-package",
        limits(Some(2), Some(120)),
        Counted::AppAndTenant,
    ),
];

impl RateLimitSpec {
    /// Resolves presets to limits and checks explicit ones. The presets follow the limits
    /// Microsoft documents:
    ///
    /// | preset | limits | for |
    /// |---|---|---|
    /// | `mde` | 100/min and 1,500/h | most Defender for Endpoint APIs ([list alerts]) |
    /// | `advanced-hunting` | 45/min and 1,500/h | MDE `/api/advancedqueries/run` ([MDE advanced hunting]) and XDR `/api/advancedhunting/run` ([XDR advanced hunting]) |
    /// | `graph-hunting` | 45/min | Graph `/security/runHuntingQuery` ([Graph security API]) |
    /// | `xdr-incidents` | 50/min and 1,500/h | Defender XDR incidents ([list incidents]) |
    /// | `mdca` | 30/min | Defender for Cloud Apps ([Cloud Apps API]) |
    /// | `graph-security` | 150/min | Microsoft Graph security API ([Graph throttling limits]) |
    /// | `live-response` | 10/min | MDE live response ([live response]) |
    /// | `investigation-package` | 2/min and 120/h | MDE investigation package download ([package URI]) |
    ///
    /// `advanced-hunting`, `graph-hunting` and `mdca` are counted per tenant, whatever the app;
    /// the others per app and tenant.
    ///
    /// [list alerts]: https://learn.microsoft.com/en-us/defender-endpoint/api/get-alerts
    /// [MDE advanced hunting]: https://learn.microsoft.com/en-us/defender-endpoint/api/run-advanced-query-api
    /// [XDR advanced hunting]: https://learn.microsoft.com/en-us/defender-xdr/api-advanced-hunting
    /// [Graph security API]: https://learn.microsoft.com/en-us/graph/api/resources/security-api-overview
    /// [list incidents]: https://learn.microsoft.com/en-us/defender-xdr/api-list-incidents
    /// [Cloud Apps API]: https://learn.microsoft.com/en-us/defender-cloud-apps/api-introduction
    /// [Graph throttling limits]: https://learn.microsoft.com/en-us/graph/throttling-limits
    /// [live response]: https://learn.microsoft.com/en-us/defender-endpoint/api/run-live-response
    /// [package URI]: https://learn.microsoft.com/en-us/defender-endpoint/api/get-package-sas-uri
    ///
    /// `Err` holds a message naming the problem: an unknown preset (with the known ones), no limit
    /// at all, a zero limit, or a budget name that is not a short word.
    pub(crate) fn resolve(&self) -> Result<RateLimit, String> {
        match self {
            Self::Preset(name) => PRESETS
                .iter()
                .find(|(known, ..)| known == name)
                .map(|(name, limits, counted)| RateLimit {
                    limits: *limits,
                    family: Arc::from(*name),
                    per_tenant: *counted == Counted::Tenant,
                })
                .ok_or_else(|| {
                    let known: Vec<&str> = PRESETS.iter().map(|(known, ..)| *known).collect();
                    format!(
                        "unknown rate limit preset {name:?} (known: {})",
                        known.join(", ")
                    )
                }),
            Self::Custom(custom) => {
                let mut limits = limits(custom.per_minute, custom.per_hour);
                if let Some(window) = custom.window {
                    if custom.per_minute.is_none() {
                        return Err("a rate limit window is the length per_minute counts over: \
                                    it needs per_minute"
                            .to_owned());
                    }
                    if !(MIN_WINDOW..=MINUTE).contains(&window) {
                        return Err(format!(
                            "rate limit window must be between {}s and {}s",
                            MIN_WINDOW.as_secs(),
                            MINUTE.as_secs()
                        ));
                    }
                    limits.minute = window;
                }
                match (limits.per_minute, limits.per_hour) {
                    (None, None) => {
                        return Err("a rate limit needs per_minute, per_hour or both".to_owned());
                    }
                    (Some(0), _) => {
                        return Err("rate limit per_minute must be greater than zero".to_owned());
                    }
                    (_, Some(0)) => {
                        return Err("rate limit per_hour must be greater than zero".to_owned());
                    }
                    _ => {}
                }
                let family = match &custom.budget {
                    Some(name) => {
                        let word = !name.is_empty()
                            && name.len() <= MAX_BUDGET_NAME
                            && name
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                        if !word {
                            return Err(format!(
                                "budget {name:?}: a budget name is 1 to {MAX_BUDGET_NAME} letters, \
                                 digits, '-', '_' or '.'"
                            ));
                        }
                        format!("budget-{name}")
                    }
                    None => {
                        let window = |n: Option<u32>, unit: &str| n.map(|n| format!("-{n}{unit}"));
                        let minute = if limits.minute == MINUTE {
                            "m".to_owned()
                        } else {
                            format!("per{}ms", limits.minute.as_millis())
                        };
                        format!(
                            "custom{}{}",
                            window(limits.per_minute, &minute).unwrap_or_default(),
                            window(limits.per_hour, "h").unwrap_or_default()
                        )
                    }
                };
                Ok(RateLimit {
                    limits,
                    family: family.into(),
                    per_tenant: false,
                })
            }
        }
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
