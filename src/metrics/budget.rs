//! The rate-limit budgets' metrics: their label sets, what a budget reports at scrape time, and
//! the events counted per budget (waits, refusals, holds) and for the shared store.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;

use super::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BudgetLabels {
    pub(super) budget: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct WindowLabels {
    pub(super) budget: String,
    pub(super) window: &'static str,
}

/// What a rate-limit budget has left, for the gauges set at scrape time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BudgetSample<'a> {
    /// `family/app/tenant`.
    pub(crate) budget: &'a str,
    /// Requests that could go now by the per-minute limit, if limited.
    pub(crate) minute: Option<u32>,
    /// The same by the per-hour limit.
    pub(crate) hour: Option<u32>,
    /// What is left of a hold after an upstream 429.
    pub(crate) held_for: Duration,
}

/// What happened to a request on a budget.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BudgetEvent {
    /// It waited for its turn.
    Wait,
    /// It was refused with 429.
    Refusal,
    /// An upstream 429 held the budget.
    Hold,
}

impl Metrics {
    /// Counts what happened to a request on `budget`.
    pub(crate) fn budget_event(&self, budget: &str, event: BudgetEvent) {
        let family = match event {
            BudgetEvent::Wait => &self.budget_waits,
            BudgetEvent::Refusal => &self.budget_refusals,
            BudgetEvent::Hold => &self.budget_holds,
        };
        family
            .get_or_create(&BudgetLabels {
                budget: budget.to_owned(),
            })
            .inc();
    }

    /// Records that budgets draw on the store (`up`) or fell back to local ones (counted).
    pub(crate) fn rate_limit_store(&self, up: bool) {
        if !up {
            self.store_fallbacks.inc();
        }
        self.store_up.set(i64::from(up));
    }

    /// Sets the budget gauges from `budgets` (what each has left), before an exposition.
    pub(crate) fn set_budgets(&self, budgets: &[BudgetSample<'_>]) {
        self.budget_remaining.clear();
        self.budget_held.clear();
        for sample in budgets {
            for (window, left) in [("minute", sample.minute), ("hour", sample.hour)] {
                if let Some(left) = left {
                    self.budget_remaining
                        .get_or_create(&WindowLabels {
                            budget: sample.budget.to_owned(),
                            window,
                        })
                        .set(i64::from(left));
                }
            }
            self.budget_held
                .get_or_create(&BudgetLabels {
                    budget: sample.budget.to_owned(),
                })
                .set(sample.held_for.as_secs_f64());
        }
    }
}
