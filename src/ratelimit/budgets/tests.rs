//! Unit tests of the budget registry, on tokio's paused clock: what shares a budget, what does
//! not, and what a reload keeps.

use super::*;
use crate::ratelimit::limits;

const WAITING: Waiting = Waiting {
    max_wait: Duration::ZERO,
    max_queue: 0,
};

fn family(name: &str, app: Option<&str>) -> BudgetFamily {
    BudgetFamily {
        name: name.into(),
        app: app.map(Arc::from),
    }
}

fn registry(per_minute: u32, previous: Option<&Budgets>) -> Budgets {
    Budgets::new(
        [
            ("mde".into(), limits(Some(per_minute), None)),
            ("advanced-hunting".into(), limits(Some(per_minute), None)),
        ],
        WAITING,
        None,
        previous,
    )
}

async fn spend(budget: &Budget, n: u32) -> u32 {
    let mut admitted = 0;
    for _ in 0..n {
        if budget.acquire(None).await.is_ok() {
            admitted += 1;
        }
    }
    admitted
}

#[tokio::test(start_paused = true)]
async fn each_tenant_of_one_app_has_its_own_full_budget() {
    let budgets = registry(3, None);
    let mde = family("mde", Some("app"));
    let (one, two) = (
        budgets.get(&mde, &"t1".into()),
        budgets.get(&mde, &"t2".into()),
    );
    assert_eq!(spend(&one, 5).await, 3);
    assert_eq!(spend(&two, 5).await, 3);
    assert_eq!(one.label(), "mde/app/t1");
}

#[tokio::test(start_paused = true)]
async fn one_family_app_and_tenant_is_one_budget_whichever_route_asks() {
    let budgets = registry(3, None);
    let mde = family("mde", Some("app"));
    let first = budgets.get(&mde, &"t1".into());
    let second = budgets.get(&mde, &"t1".into());
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(spend(&first, 2).await, 2);
    assert_eq!(spend(&second, 2).await, 1);
    // Another app in the tenant has a budget of its own.
    let other = budgets.get(&family("mde", Some("other")), &"t1".into());
    assert_eq!(spend(&other, 3).await, 3);
}

#[tokio::test(start_paused = true)]
async fn a_family_counted_per_tenant_is_shared_by_every_app_of_the_tenant() {
    let budgets = registry(3, None);
    let hunting = family("advanced-hunting", None);
    assert_eq!(spend(&budgets.get(&hunting, &"t1".into()), 3).await, 3);
    assert_eq!(spend(&budgets.get(&hunting, &"t1".into()), 1).await, 0);
    assert_eq!(
        budgets.get(&hunting, &"t1".into()).label(),
        "advanced-hunting/*/t1"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hold_holds_its_own_budget_only() {
    let budgets = registry(3, None);
    let mde = family("mde", Some("app"));
    budgets
        .get(&mde, &"t1".into())
        .hold(Duration::from_secs(5), None);
    assert_eq!(spend(&budgets.get(&mde, &"t1".into()), 1).await, 0);
    assert_eq!(spend(&budgets.get(&mde, &"t2".into()), 1).await, 1);
    let views = budgets.views().await;
    let held: Vec<_> = views
        .iter()
        .map(|v| (v.label.as_str(), v.remaining.held_for, v.holds))
        .collect();
    assert_eq!(
        held,
        [
            ("mde/app/t1", Some(Duration::from_secs(5)), 1),
            ("mde/app/t2", None, 0)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_reload_keeps_a_budget_whose_family_keeps_its_limits_and_takes_the_new_wait() {
    let before = registry(3, None);
    let mde = family("mde", Some("app"));
    let tenant: Arc<str> = "t1".into();
    assert_eq!(spend(&before.get(&mde, &tenant), 3).await, 3);
    before.get(&mde, &tenant).hold(Duration::from_secs(5), None);

    let patient = Waiting {
        max_wait: Duration::from_secs(90),
        max_queue: 10,
    };
    let kept = Budgets::new(
        [("mde".into(), limits(Some(3), None))],
        patient,
        None,
        Some(&before),
    );
    let budget = kept.get(&mde, &tenant);
    assert!(Arc::ptr_eq(&budget, &before.get(&mde, &tenant)));
    // The hold and the spent allowance stay (the three calls leave the window at 61 s); the
    // longer wait now applies.
    assert_eq!(
        budget.acquire(None).await,
        Ok(Admission::Waited(Duration::from_secs(61)))
    );

    let changed = registry(4, Some(&kept));
    assert_eq!(spend(&changed.get(&mde, &tenant), 4).await, 4);
}

#[tokio::test(start_paused = true)]
async fn views_report_what_is_left_in_each_window() {
    let budgets = Budgets::new(
        [("mde".into(), limits(Some(100), Some(1500)))],
        WAITING,
        None,
        None,
    );
    let budget = budgets.get(&family("mde", Some("app")), &"t1".into());
    assert_eq!(spend(&budget, 40).await, 40);
    let view = &budgets.views().await[0];
    assert_eq!(view.remaining.minute, Some(60));
    assert_eq!(view.remaining.hour, Some(1460));
    assert!(!view.shared);
}
