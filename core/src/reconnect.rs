//! When to try the broker again after a lost connection: shared by every backend.
//!
//! Exponential backoff with jitter, so a restarting broker is not hit by every client at the
//! same instant.

use std::time::Duration;

const BACKOFF_FIRST: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The wait before attempt number `failures + 1`: 250 ms doubling to 30 s, ±25 % jitter
/// drawn from `random`.
pub fn backoff(failures: u32, random: u64) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let base = BACKOFF_FIRST.saturating_mul(1 << exponent).min(BACKOFF_MAX);
    let jitter = 0.75 + (random % 1000) as f64 / 2000.0;
    base.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1, 999) <= Duration::from_millis(313));
        assert!(backoff(1, 0) >= Duration::from_millis(187));
        assert!(backoff(3, 0) >= Duration::from_millis(750));
        for failures in [10, 100, u32::MAX] {
            assert!(backoff(failures, 999) <= BACKOFF_MAX.mul_f64(1.25));
        }
    }
}
