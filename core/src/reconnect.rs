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

/// How many times, before the first connection, a broker may take the connection and then
/// drop it before accepting it, and still be tried again: a node that is busy or restarting
/// does that, and giving up at once would tell the user a reachable server is unreachable.
const DROPS_BEFORE_FIRST_CONNECTION: u32 = 5;

/// Where a client stands in its list of brokers: the one in use, how many in a row could
/// not be reached before the first connection (all of them: the servers are unreachable),
/// and how many times the one in use took a connection and dropped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerChoice {
    pub current: usize,
    servers: usize,
    unreached: usize,
    dropped: u32,
}

/// What follows an attempt that failed before the client was ever connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstAttempt {
    /// The broker never answered: the next one in the list, at once.
    NextServer,
    /// The broker took the connection, then dropped it: the same one again after a backoff.
    AgainLater,
    /// Every broker failed: the servers are unreachable.
    GiveUp,
}

impl ServerChoice {
    pub fn new(servers: usize) -> Self {
        Self {
            current: 0,
            servers: servers.max(1),
            unreached: 0,
            dropped: 0,
        }
    }

    /// Before the first connection, an attempt failed; `answered` says whether the broker
    /// took the connection (the client could send its MQTT CONNECT) and then dropped it
    /// without an answer. A broker that keeps doing so counts as unreachable.
    pub fn failed_before_connecting(&mut self, answered: bool) -> FirstAttempt {
        if answered && self.dropped < DROPS_BEFORE_FIRST_CONNECTION {
            self.dropped += 1;
            return FirstAttempt::AgainLater;
        }
        self.dropped = 0;
        self.unreached += 1;
        self.current = (self.current + 1) % self.servers;
        if self.unreached < self.servers {
            FirstAttempt::NextServer
        } else {
            FirstAttempt::GiveUp
        }
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
        assert_eq!(
            choice.failed_before_connecting(false),
            FirstAttempt::NextServer
        );
        assert_eq!(choice.current, 1);
        assert_eq!(
            choice.failed_before_connecting(false),
            FirstAttempt::NextServer
        );
        assert_eq!(choice.current, 2);
        assert_eq!(
            choice.failed_before_connecting(false),
            FirstAttempt::GiveUp,
            "all three failed"
        );
    }

    #[test]
    fn a_broker_that_answers_and_drops_the_connection_is_tried_again_a_few_times() {
        let mut choice = ServerChoice::new(1);
        for _ in 0..DROPS_BEFORE_FIRST_CONNECTION {
            assert_eq!(
                choice.failed_before_connecting(true),
                FirstAttempt::AgainLater
            );
        }
        assert_eq!(
            choice.failed_before_connecting(true),
            FirstAttempt::GiveUp,
            "a broker that always drops the connection is as good as unreachable"
        );
    }

    #[test]
    fn each_of_several_brokers_may_drop_a_first_connection_a_few_times() {
        // The first never answers, the second keeps dropping, the third is tried last.
        let mut choice = ServerChoice::new(3);
        assert_eq!(
            choice.failed_before_connecting(false),
            FirstAttempt::NextServer
        );
        assert_eq!(choice.current, 1);
        for _ in 0..DROPS_BEFORE_FIRST_CONNECTION {
            assert_eq!(
                choice.failed_before_connecting(true),
                FirstAttempt::AgainLater
            );
            assert_eq!(choice.current, 1, "the same broker again");
        }
        assert_eq!(
            choice.failed_before_connecting(true),
            FirstAttempt::NextServer
        );
        assert_eq!(choice.current, 2);
        for _ in 0..DROPS_BEFORE_FIRST_CONNECTION {
            assert_eq!(
                choice.failed_before_connecting(true),
                FirstAttempt::AgainLater
            );
        }
        assert_eq!(choice.failed_before_connecting(true), FirstAttempt::GiveUp);
    }
}
