//! Which gateways are alive, from their heartbeats. Pure bookkeeping over a clock the
//! caller reads, so every rule is a plain unit test.
//!
//! Every gateway publishes a heartbeat every [`HEARTBEAT_EVERY`] and hears everyone's, its
//! own included. A gateway not heard for [`DEAD_AFTER`] is dead: the names its connections
//! held count as free, everywhere at once. A gateway that has not heard *itself* for
//! [`FENCE_AFTER`] (shorter) is cut off from the cluster, and closes its clients before the
//! others can give their names away: two connections never both hold a name.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How often a gateway says it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

/// Silence after which other gateways count a gateway as dead.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);

/// Silence of its own heartbeats after which a gateway stops serving its clients; shorter
/// than [`DEAD_AFTER`], so it lets go before anyone else takes over.
pub const FENCE_AFTER: Duration = Duration::from_secs(3);

/// One gateway's view of the others.
#[derive(Debug)]
pub struct Liveness {
    me: String,
    started: Instant,
    last_heard: HashMap<String, Instant>,
    /// Gateways already reported dead (until heard again).
    dead: HashSet<String>,
    /// When this gateway last heard its own heartbeat.
    self_heard: Instant,
    /// It heard itself again after a silence past [`FENCE_AFTER`] (it was frozen, or cut
    /// off): cut off all the same until [`Liveness::fenced`] says the clients are closed.
    self_gap: bool,
    /// The clients were closed while this gateway was still silent: the heartbeat that ends
    /// the silence needs no second closing.
    silence_fenced: bool,
}

impl Liveness {
    pub fn new(me: String, now: Instant) -> Self {
        Self {
            me,
            started: now,
            last_heard: HashMap::new(),
            dead: HashSet::new(),
            self_heard: now,
            self_gap: false,
            silence_fenced: false,
        }
    }

    /// A heartbeat of `gateway` arrived.
    pub fn heard(&mut self, gateway: &str, now: Instant) {
        if gateway == self.me {
            let gap = now.saturating_duration_since(self.self_heard) >= FENCE_AFTER;
            self.self_gap |= gap && !self.silence_fenced;
            self.silence_fenced = false;
            self.self_heard = now;
            return;
        }
        self.dead.remove(gateway);
        self.last_heard.insert(gateway.to_owned(), now);
    }

    /// `gateway` holds a name someone here cares about: if it was never heard, count it as
    /// heard when this gateway started, so it is reported dead like any other once silent
    /// for [`DEAD_AFTER`] (it may have died before we heard it once).
    pub fn mentioned(&mut self, gateway: &str) {
        if gateway != self.me && !self.dead.contains(gateway) {
            (self.last_heard)
                .entry(gateway.to_owned())
                .or_insert(self.started);
        }
    }

    /// Whether `gateway` counts as alive. One never heard of is alive only while this
    /// gateway is too new to have heard everyone (it may hold names from before we came).
    pub fn is_live(&self, gateway: &str, now: Instant) -> bool {
        if gateway == self.me {
            return true;
        }
        if self.dead.contains(gateway) {
            return false;
        }
        let since = self
            .last_heard
            .get(gateway)
            .copied()
            .unwrap_or(self.started);
        now.saturating_duration_since(since) < DEAD_AFTER
    }

    /// Gateways that went silent past [`DEAD_AFTER`] since the last call: their holders
    /// must be reported offline. None while this gateway is cut off itself.
    pub fn newly_dead(&mut self, now: Instant) -> Vec<String> {
        if self.cut_off(now) {
            // Silent ourselves, we cannot tell who else was: everyone gets a fresh window.
            for at in self.last_heard.values_mut() {
                *at = now;
            }
            return Vec::new();
        }
        let gone: Vec<String> = (self.last_heard.iter())
            .filter(|(_, at)| now.saturating_duration_since(**at) >= DEAD_AFTER)
            .map(|(gateway, _)| gateway.clone())
            .collect();
        for gateway in &gone {
            self.last_heard.remove(gateway);
            self.dead.insert(gateway.clone());
        }
        gone
    }

    /// Whether this gateway's id sorts first among the live ones: the one that does the
    /// work one survivor should do.
    pub fn first_alive(&self, now: Instant) -> bool {
        (self.last_heard.keys())
            .filter(|gateway| self.is_live(gateway, now))
            .all(|gateway| *gateway > self.me)
    }

    /// Whether this gateway has not heard itself for [`FENCE_AFTER`], or has not closed its
    /// clients since such a silence: cut off. Others may have given its names away.
    pub fn cut_off(&self, now: Instant) -> bool {
        self.self_gap || now.saturating_duration_since(self.self_heard) >= FENCE_AFTER
    }

    /// Every client was closed at `now` for a silence: back to serving once heard.
    pub fn fenced(&mut self, now: Instant) {
        self.self_gap = false;
        self.silence_fenced = now.saturating_duration_since(self.self_heard) >= FENCE_AFTER;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// This gateway hears its own heartbeat every second from `from` to `to` seconds.
    fn beating(liveness: &mut Liveness, t0: Instant, from: u32, to: u32) {
        for second in from..=to {
            liveness.heard("me", t0 + second * S);
        }
    }

    #[test]
    fn a_gateway_heard_lately_is_alive_and_one_silent_is_dead_once() {
        let t0 = Instant::now();
        let mut liveness = Liveness::new("me".into(), t0);
        beating(&mut liveness, t0, 0, 8);
        liveness.heard("g1", t0 + S);
        assert!(liveness.is_live("g1", t0 + 5 * S));
        assert!(liveness.newly_dead(t0 + 5 * S).is_empty());
        assert_eq!(liveness.newly_dead(t0 + 6 * S), ["g1"]);
        assert!(!liveness.is_live("g1", t0 + 6 * S));
        assert!(liveness.newly_dead(t0 + 7 * S).is_empty(), "reported once");
        liveness.heard("g1", t0 + 8 * S);
        assert!(liveness.is_live("g1", t0 + 8 * S), "back once heard again");
    }

    #[test]
    fn an_unknown_gateway_counts_as_alive_only_while_we_are_new() {
        let t0 = Instant::now();
        let liveness = Liveness::new("me".into(), t0);
        assert!(liveness.is_live("older", t0 + S));
        assert!(!liveness.is_live("older", t0 + DEAD_AFTER));
        assert!(liveness.is_live("me", t0 + 100 * S));
    }

    #[test]
    fn a_gateway_never_heard_but_holding_a_name_is_reported_dead_too() {
        let t0 = Instant::now();
        let mut liveness = Liveness::new("me".into(), t0);
        beating(&mut liveness, t0, 0, 50);
        liveness.mentioned("gone-before-we-came");
        liveness.mentioned("me");
        assert!(liveness.newly_dead(t0 + S).is_empty());
        assert_eq!(
            liveness.newly_dead(t0 + DEAD_AFTER),
            ["gone-before-we-came"]
        );
        liveness.mentioned("gone-before-we-came");
        assert!(liveness.newly_dead(t0 + 10 * DEAD_AFTER).is_empty());
    }

    #[test]
    fn a_gateway_that_was_silent_itself_calls_nobody_dead() {
        let t0 = Instant::now();
        let mut liveness = Liveness::new("me".into(), t0);
        liveness.heard("me", t0);
        liveness.heard("g1", t0);
        // Frozen for 10 s: on waking it has heard neither itself nor g1; it closes its
        // clients before its first heartbeat comes back, and needs not close them again.
        assert!(liveness.newly_dead(t0 + 10 * S).is_empty());
        assert!(liveness.cut_off(t0 + 10 * S));
        liveness.fenced(t0 + 10 * S);
        beating(&mut liveness, t0, 10, 15);
        assert!(!liveness.cut_off(t0 + 10 * S));
        assert!(liveness.is_live("g1", t0 + 11 * S));
        assert!(liveness.newly_dead(t0 + 11 * S).is_empty());
        assert_eq!(liveness.newly_dead(t0 + 15 * S), ["g1"]);
    }

    #[test]
    fn the_live_gateway_whose_id_sorts_first_is_first() {
        let t0 = Instant::now();
        let mut b = Liveness::new("b".into(), t0);
        b.heard("c", t0);
        assert!(b.first_alive(t0));
        b.heard("a", t0);
        assert!(!b.first_alive(t0));
        b.heard("c", t0 + 5 * S);
        assert!(b.first_alive(t0 + 5 * S), "a is dead by then");
    }

    #[test]
    fn a_gateway_that_stops_hearing_itself_is_cut_off_before_others_call_it_dead() {
        let t0 = Instant::now();
        let mut liveness = Liveness::new("me".into(), t0);
        liveness.heard("me", t0 + S);
        // docs/scale.md: cut off once it has not heard itself for 3 s, before the 5 s after
        // which the others call it dead.
        let ms = Duration::from_millis(1);
        assert!(!liveness.cut_off(t0 + S + 3 * S - ms));
        assert!(liveness.cut_off(t0 + S + 3 * S));
        assert_eq!(DEAD_AFTER, 5 * S);
        liveness.heard("me", t0 + 5 * S);
        assert!(
            liveness.cut_off(t0 + 5 * S),
            "heard again, but its clients are not closed yet"
        );
        liveness.fenced(t0 + 5 * S);
        assert!(!liveness.cut_off(t0 + 5 * S));
        liveness.heard("me", t0 + 6 * S);
        assert!(!liveness.cut_off(t0 + 6 * S));
    }
}
