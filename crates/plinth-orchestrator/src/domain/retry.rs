//! When a failed task is tried again: Airflow's rules, so users who know them are not surprised.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::domain::pipeline::RetryPolicy;

/// No retry waits longer than this, whatever the policy says.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(24 * 3600);

/// Whether attempt `failed_try` (counted from 1) may be followed by another: a task runs at most
/// `retries + 1` times.
pub fn may_retry(policy: &RetryPolicy, failed_try: u32) -> bool {
    failed_try <= policy.retries
}

/// How long to wait after attempt `failed_try` (counted from 1) failed before the next.
///
/// Without backoff: `retry_delay`. With `retry_exponential_backoff`, Airflow's formula:
/// `min = ceil(retry_delay_s * 2^(failed_try - 1))` (at least 1 s), plus a deterministic jitter
/// `hash(seed#failed_try) % min`, so the delay lies in `[min, 2 * min)`; then capped by
/// `max_retry_delay` and by [`MAX_RETRY_DELAY`]. `seed` is `pipeline#task#run_id`, so replicas agree on
/// the delay and tasks failing together do not retry in lockstep.
pub fn retry_delay(policy: &RetryPolicy, failed_try: u32, seed: &str) -> Duration {
    if !policy.retry_exponential_backoff {
        return policy.retry_delay;
    }
    let cap = policy
        .max_retry_delay
        .map_or(MAX_RETRY_DELAY, |max| max.min(MAX_RETRY_DELAY));
    let exponent = i32::try_from(failed_try.saturating_sub(1)).unwrap_or(i32::MAX);
    let scaled = policy.retry_delay.as_secs_f64() * 2f64.powi(exponent);
    // Past the cap the jitter no longer matters: stop before the arithmetic overflows.
    let max_seconds = MAX_RETRY_DELAY.as_secs() as f64;
    let min_backoff = scaled.ceil().clamp(1.0, max_seconds) as u64;
    let digest = Sha256::digest(format!("{seed}#{failed_try}").as_bytes());
    let mut first_bytes = [0u8; 8];
    first_bytes.copy_from_slice(&digest[..8]);
    let jitter = u64::from_be_bytes(first_bytes) % min_backoff;
    Duration::from_secs(min_backoff + jitter).min(cap)
}

#[cfg(test)]
mod tests;
