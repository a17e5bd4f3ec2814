//! When and where to try the broker again after a lost connection: shared by every
//! backend.
//!
//! Exponential backoff with jitter, so a restarting broker is not hit by every client at the
//! same instant; and, with several brokers (nodes of one cluster), a move to another one
//! drawn at random, so the clients of a dead node spread over the others instead of all
//! landing on its neighbour.

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

/// Which of `servers` brokers to try after losing the one at `current`: another one, drawn
/// from `random`; the same when it is the only one.
pub fn next_server(current: usize, servers: usize, random: u64) -> usize {
    if servers <= 1 {
        return 0;
    }
    let step = 1 + (random % (servers as u64 - 1)) as usize;
    (current + step) % servers
}

/// Where a client stands in its list of brokers: the one in use, and how many in a row
/// could not be reached before the first connection (all of them: the servers are
/// unreachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerChoice {
    pub current: usize,
    servers: usize,
    unreached: usize,
}

impl ServerChoice {
    pub fn new(servers: usize) -> Self {
        Self {
            current: 0,
            servers: servers.max(1),
            unreached: 0,
        }
    }

    /// Before the first connection, a broker could not be reached: the next in the list is
    /// tried, or `false` once every one of them failed.
    pub fn unreached(&mut self) -> bool {
        self.unreached += 1;
        self.current = (self.current + 1) % self.servers;
        self.unreached < self.servers
    }

    /// A connection that was up is lost, or an attempt after one failed: another broker.
    pub fn lost(&mut self, random: u64) {
        self.current = next_server(self.current, self.servers, random);
    }
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

    #[test]
    fn a_lost_broker_is_left_for_another_drawn_at_random() {
        assert_eq!(next_server(0, 1, 7), 0);
        for random in 0..100 {
            let next = next_server(2, 5, random);
            assert!(next != 2 && next < 5);
        }
        let drawn: std::collections::BTreeSet<_> = (0..100).map(|r| next_server(0, 4, r)).collect();
        assert_eq!(drawn.len(), 3, "every other broker is drawn");
    }

    #[test]
    fn before_the_first_connection_every_broker_is_tried_once() {
        let mut choice = ServerChoice::new(3);
        assert!(choice.unreached());
        assert_eq!(choice.current, 1);
        assert!(choice.unreached());
        assert_eq!(choice.current, 2);
        assert!(!choice.unreached(), "all three failed");
    }
}
