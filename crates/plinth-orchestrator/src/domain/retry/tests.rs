use super::*;

fn policy(retry_delay_seconds: u64, backoff: bool, max: Option<u64>) -> RetryPolicy {
    RetryPolicy {
        retries: 3,
        retry_delay: Duration::from_secs(retry_delay_seconds),
        retry_exponential_backoff: backoff,
        max_retry_delay: max.map(Duration::from_secs),
    }
}

#[test]
fn a_task_runs_at_most_retries_plus_one_times() {
    let policy = policy(30, false, None);
    assert!(may_retry(&policy, 1));
    assert!(may_retry(&policy, 3));
    assert!(!may_retry(&policy, 4));
    assert!(!may_retry(&RetryPolicy::default(), 1));
}

#[test]
fn without_backoff_the_delay_is_constant() {
    let policy = policy(30, false, Some(10));
    for failed_try in 1..5 {
        assert_eq!(
            retry_delay(&policy, failed_try, "p#t#r"),
            Duration::from_secs(30)
        );
    }
}

#[test]
fn backoff_doubles_with_deterministic_jitter_in_min_to_twice_min() {
    let policy = policy(30, true, None);
    for seed in ["p#t#r1", "p#t#r2", "p#other#r1"] {
        for failed_try in 1..8u32 {
            let min = 30 * 2u64.pow(failed_try - 1);
            let delay = retry_delay(&policy, failed_try, seed).as_secs();
            assert!(
                (min..2 * min).contains(&delay),
                "try {failed_try}: {delay}s not in [{min}, {})",
                2 * min
            );
            assert_eq!(
                retry_delay(&policy, failed_try, seed),
                Duration::from_secs(delay)
            );
        }
    }
    // Different runs get different jitter (not all equal over a few seeds).
    let delays: std::collections::BTreeSet<u64> = (0..20)
        .map(|run| retry_delay(&policy, 3, &format!("p#t#r{run}")).as_secs())
        .collect();
    assert!(delays.len() > 1, "{delays:?}");
}

#[test]
fn backoff_is_capped_by_max_retry_delay_and_a_day() {
    let capped = policy(30, true, Some(100));
    assert_eq!(retry_delay(&capped, 5, "s"), Duration::from_secs(100));
    let uncapped = policy(3600, true, None);
    assert_eq!(retry_delay(&uncapped, 40, "s"), MAX_RETRY_DELAY);
    assert_eq!(retry_delay(&uncapped, u32::MAX, "s"), MAX_RETRY_DELAY);
    let huge_cap = policy(3600, true, Some(10 * 24 * 3600));
    assert_eq!(retry_delay(&huge_cap, 40, "s"), MAX_RETRY_DELAY);
}

#[test]
fn a_zero_delay_with_backoff_still_waits_a_second() {
    let policy = policy(0, true, None);
    assert_eq!(retry_delay(&policy, 1, "s"), Duration::from_secs(1));
}
