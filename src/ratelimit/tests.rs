//! Unit tests of the rate limiter, on tokio's paused clock: windows, queue, holds and
//! Retry-After.

use std::sync::Arc;

use super::*;

const LONG: Duration = Duration::from_secs(24 * 60 * 60);

fn per_minute(n: u32) -> Limits {
    limits(Some(n), None)
}

/// `until` on the clock `hold_until` takes, from tokio's (possibly paused) clock.
fn after(wait: Duration) -> std::time::Instant {
    (Instant::now() + wait).into_std()
}

async fn burst(limiter: &RateLimiter, n: u32) {
    for i in 0..n {
        assert_eq!(
            limiter.acquire().await,
            Ok(Admission::Immediate),
            "request {i}"
        );
    }
}

/// Lets spawned tasks run up to their first wait; time stays where it is.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn burst_of_per_minute_passes_at_once_and_the_next_waits_until_it_has_left_the_window() {
    let limiter = RateLimiter::new(per_minute(100), LONG, 10);
    burst(&limiter, 100).await;
    // The burst was counted in the minute's first second: the span of 61 grains ending with the
    // 62nd second is the first without it.
    assert_eq!(
        limiter.acquire().await,
        Ok(Admission::Waited(Duration::from_secs(61)))
    );
}

/// Drives `limiter` flat out (a request whenever the last one went) for `length`, and returns the
/// instants the requests went at.
async fn flat_out(limiter: &RateLimiter, length: Duration) -> Vec<Instant> {
    let start = Instant::now();
    let mut went = Vec::new();
    while Instant::now() - start < length {
        limiter.acquire().await.unwrap();
        went.push(Instant::now());
    }
    went
}

/// The most of `went` (in order) in any span of `length`.
fn most_in_any_span(went: &[Instant], length: Duration) -> usize {
    (0..went.len())
        .map(|i| {
            went[i..]
                .iter()
                .take_while(|at| **at - went[i] < length)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn any_minute_of_a_budget_driven_flat_out_holds_at_most_its_per_minute_limit() {
    let limiter = RateLimiter::new(per_minute(100), LONG, 10);
    tokio::time::advance(Duration::from_millis(300)).await;
    let went = flat_out(&limiter, Duration::from_secs(5 * 60)).await;
    assert_eq!(most_in_any_span(&went, Duration::from_secs(60)), 100);
    // And it keeps going: a full allowance about every 61 s.
    assert!(went.len() >= 4 * 100, "{}", went.len());
}

#[tokio::test(start_paused = true)]
async fn any_hour_of_a_budget_driven_flat_out_holds_at_most_its_per_hour_limit() {
    let limiter = RateLimiter::new(limits(Some(100), Some(300)), LONG, 10);
    let went = flat_out(&limiter, Duration::from_secs(3 * 60 * 60)).await;
    assert_eq!(most_in_any_span(&went, Duration::from_secs(60 * 60)), 300);
    assert!(most_in_any_span(&went, Duration::from_secs(60)) <= 100);
    assert!(went.len() >= 2 * 300, "{}", went.len());
}

#[tokio::test(start_paused = true)]
async fn requests_arriving_evenly_faster_than_the_limit_never_put_more_than_it_in_a_minute() {
    let limiter = Arc::new(RateLimiter::new(per_minute(10), LONG, 1000));
    let mut waiters = Vec::new();
    for _ in 0..60 {
        let limiter = Arc::clone(&limiter);
        waiters.push(tokio::spawn(async move {
            limiter.acquire().await.unwrap();
            Instant::now()
        }));
        tokio::time::sleep(Duration::from_millis(1700)).await;
    }
    let mut went = Vec::new();
    for waiter in waiters {
        went.push(waiter.await.unwrap());
    }
    assert!(
        went.windows(2).all(|w| w[0] <= w[1]),
        "not in arrival order"
    );
    assert_eq!(most_in_any_span(&went, Duration::from_secs(60)), 10);
}

#[tokio::test(start_paused = true)]
async fn calls_leave_the_window_a_grain_at_a_time() {
    let limiter = RateLimiter::new(per_minute(100), LONG, 10);
    burst(&limiter, 60).await;
    tokio::time::advance(Duration::from_secs(3)).await;
    burst(&limiter, 40).await;
    // The first 60 leave the window at 61 s, the next 40 at 64 s.
    tokio::time::advance(Duration::from_secs(58)).await;
    burst(&limiter, 60).await;
    assert_eq!(
        limiter.acquire().await,
        Ok(Admission::Waited(Duration::from_secs(3)))
    );
}

#[tokio::test(start_paused = true)]
async fn waiters_go_in_arrival_order() {
    let limiter = Arc::new(RateLimiter::new(per_minute(2), LONG, 10));
    burst(&limiter, 2).await;
    let start = Instant::now();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                limiter.acquire().await.unwrap();
                Instant::now() - start
            })
        })
        .collect();
    let mut went = Vec::new();
    for waiter in waiters {
        went.push(waiter.await.unwrap());
    }
    assert_eq!(went, [61, 61, 122].map(Duration::from_secs).to_vec());
}

#[tokio::test(start_paused = true)]
async fn wait_longer_than_max_wait_is_refused_at_once_with_the_wait() {
    let limiter = RateLimiter::new(per_minute(100), Duration::from_secs(30), 10);
    burst(&limiter, 100).await;
    let asked = Instant::now();
    assert_eq!(
        limiter.acquire().await,
        Err(Refusal::TooLong {
            retry_after: Duration::from_secs(61)
        })
    );
    assert_eq!(Instant::now(), asked);
}

#[tokio::test(start_paused = true)]
async fn refused_request_takes_no_cell() {
    let limiter = RateLimiter::new(per_minute(100), Duration::ZERO, 10);
    burst(&limiter, 100).await;
    assert!(limiter.acquire().await.is_err());
    tokio::time::advance(Duration::from_secs(61)).await;
    burst(&limiter, 100).await;
}

#[tokio::test(start_paused = true)]
async fn full_queue_refuses_with_the_wait_it_would_have_had() {
    let limiter = Arc::new(RateLimiter::new(per_minute(100), LONG, 1));
    burst(&limiter, 100).await;
    let waiter = tokio::spawn({
        let limiter = Arc::clone(&limiter);
        async move { limiter.acquire().await }
    });
    settle().await;
    assert_eq!(
        limiter.acquire().await,
        Err(Refusal::QueueFull {
            retry_after: Duration::from_secs(61)
        })
    );
    assert_eq!(
        waiter.await.unwrap(),
        Ok(Admission::Waited(Duration::from_secs(61)))
    );
}

#[tokio::test(start_paused = true)]
async fn zero_max_queue_refuses_any_wait_but_lets_immediate_requests_through() {
    let limiter = RateLimiter::new(per_minute(2), LONG, 0);
    burst(&limiter, 2).await;
    assert_eq!(
        limiter.acquire().await,
        Err(Refusal::QueueFull {
            retry_after: Duration::from_secs(61)
        })
    );
}

#[tokio::test(start_paused = true)]
async fn cancelled_waiter_frees_its_queue_slot() {
    let limiter = RateLimiter::new(per_minute(100), LONG, 1);
    burst(&limiter, 100).await;
    let cancelled = tokio::time::timeout(Duration::from_secs(1), limiter.acquire()).await;
    assert!(cancelled.is_err(), "the waiter was still waiting");
    // Its call (at 61 s) stays counted, and a new one goes no earlier: at 61 s too, its queue
    // place free again.
    assert_eq!(
        limiter.acquire().await,
        Ok(Admission::Waited(Duration::from_secs(60)))
    );
}

#[tokio::test(start_paused = true)]
async fn per_hour_window_bites_when_per_minute_would_allow() {
    let limiter = RateLimiter::new(limits(Some(10), Some(10)), LONG, 10);
    burst(&limiter, 10).await;
    // Per minute alone the next would wait 61 s; per hour, until the burst's minute has left the
    // hour: 61 minutes.
    assert_eq!(
        limiter.acquire().await,
        Ok(Admission::Waited(Duration::from_secs(61 * 60)))
    );
}

#[tokio::test(start_paused = true)]
async fn per_hour_limit_alone_allows_its_whole_burst() {
    let limiter = RateLimiter::new(limits(None, Some(1500)), LONG, 10);
    burst(&limiter, 1500).await;
    assert_eq!(
        limiter.acquire().await,
        Ok(Admission::Waited(Duration::from_secs(61 * 60)))
    );
}

#[tokio::test(start_paused = true)]
async fn hold_makes_requests_wait_until_it_ends() {
    let limiter = RateLimiter::new(per_minute(100), LONG, 10);
    limiter.hold_until(after(Duration::from_secs(5)));
    assert_eq!(
        limiter.acquire().await,
        Ok(Admission::Waited(Duration::from_secs(5)))
    );
    assert_eq!(limiter.acquire().await, Ok(Admission::Immediate));
}

#[tokio::test(start_paused = true)]
async fn hold_beyond_max_wait_is_refused_with_the_time_left() {
    let limiter = RateLimiter::new(per_minute(100), Duration::from_secs(2), 10);
    limiter.hold_until(after(Duration::from_secs(5)));
    assert_eq!(
        limiter.acquire().await,
        Err(Refusal::TooLong {
            retry_after: Duration::from_secs(5)
        })
    );
}

#[tokio::test(start_paused = true)]
async fn later_shorter_hold_never_shortens_an_existing_one() {
    let limiter = RateLimiter::new(per_minute(100), LONG, 10);
    limiter.hold_until(after(Duration::from_secs(5)));
    limiter.hold_until(after(Duration::from_secs(1)));
    assert_eq!(
        limiter.acquire().await,
        Ok(Admission::Waited(Duration::from_secs(5)))
    );
}

#[tokio::test(start_paused = true)]
async fn hold_that_has_passed_does_not_delay() {
    let limiter = RateLimiter::new(per_minute(100), LONG, 10);
    limiter.hold_until(after(Duration::from_secs(1)));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(limiter.acquire().await, Ok(Admission::Immediate));
}

#[tokio::test(start_paused = true)]
async fn hold_set_while_a_request_waits_delays_it() {
    let limiter = Arc::new(RateLimiter::new(per_minute(100), LONG, 10));
    limiter.hold_until(after(Duration::from_millis(600)));
    let waiter = tokio::spawn({
        let limiter = Arc::clone(&limiter);
        async move { limiter.acquire().await }
    });
    settle().await;
    limiter.hold_until(after(Duration::from_secs(2)));
    assert_eq!(
        waiter.await.unwrap(),
        Ok(Admission::Waited(Duration::from_secs(2)))
    );
}

#[tokio::test(start_paused = true)]
async fn hold_set_while_a_request_waits_refuses_it_beyond_max_wait() {
    let limiter = Arc::new(RateLimiter::new(per_minute(100), Duration::from_secs(1), 1));
    limiter.hold_until(after(Duration::from_millis(600)));
    let waiter = tokio::spawn({
        let limiter = Arc::clone(&limiter);
        async move { limiter.acquire().await }
    });
    settle().await;
    limiter.hold_until(after(Duration::from_secs(5)));
    assert_eq!(
        waiter.await.unwrap(),
        Err(Refusal::TooLong {
            retry_after: Duration::from_millis(4400)
        })
    );
    // The refused waiter gave its queue slot back.
    tokio::time::advance(Duration::from_millis(4400)).await;
    assert_eq!(limiter.acquire().await, Ok(Admission::Immediate));
}

#[test]
fn limiter_and_its_acquire_future_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let limiter = RateLimiter::new(per_minute(1), LONG, 1);
    send_sync(&limiter);
    send(&limiter.acquire());
}

#[tokio::test(start_paused = true)]
async fn a_request_delayed_by_a_hold_is_counted_when_it_goes_so_no_minute_holds_more() {
    let limiter = Arc::new(RateLimiter::new(per_minute(2), LONG, 10));
    burst(&limiter, 2).await;
    // Counted at 61 s, then held until 100 s: it goes at 100 s, and is counted there.
    let waiter = tokio::spawn({
        let limiter = Arc::clone(&limiter);
        async move { limiter.acquire().await }
    });
    settle().await;
    limiter.hold_until(after(Duration::from_secs(100)));
    assert_eq!(
        waiter.await.unwrap(),
        Ok(Admission::Waited(Duration::from_secs(100)))
    );
    assert_eq!(limiter.acquire().await, Ok(Admission::Immediate));
    // Two went at 100 s: the next waits for them to leave the window.
    assert_eq!(
        limiter.acquire().await,
        Ok(Admission::Waited(Duration::from_secs(61)))
    );
}

#[tokio::test(start_paused = true)]
async fn remaining_counts_what_is_in_the_window_now() {
    let limiter = RateLimiter::new(limits(Some(10), Some(100)), LONG, 10);
    burst(&limiter, 4).await;
    let left = limiter.remaining();
    assert_eq!((left.minute, left.hour), (Some(6), Some(96)));
    tokio::time::advance(Duration::from_secs(61)).await;
    let left = limiter.remaining();
    assert_eq!((left.minute, left.hour), (Some(10), Some(96)));
}
