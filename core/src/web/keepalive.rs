//! When the browser's MQTT connection must ping the broker, and when it is given up as dead
//! because the broker stopped answering.
//!
//! A browser WebSocket over a vanished network can stay "open" for minutes, so liveness is
//! checked at the MQTT level. Pure: times are milliseconds passed in by the caller.

/// What is due now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    Nothing,
    /// Send a PINGREQ and call [`KeepAlive::on_ping_sent`].
    Ping,
    /// No CONNACK within the connect timeout.
    ConnectTimedOut,
    /// No answer to a PINGREQ within half the keep-alive interval.
    PingTimedOut,
}

/// The keep-alive schedule of one connection.
///
/// A ping goes out when nothing was sent (the MQTT rule) or nothing was received for one
/// interval, so a dead link is noticed after about 1.5 intervals even while we keep
/// publishing.
#[derive(Debug, Clone)]
pub(super) struct KeepAlive {
    interval: u64,
    /// Until CONNACK: when to stop waiting for the broker to accept us.
    connect_deadline: Option<u64>,
    last_sent: u64,
    last_received: u64,
    ping_sent: Option<u64>,
}

impl KeepAlive {
    pub fn new(now: u64, interval: u64, connect_timeout: u64) -> Self {
        Self {
            interval,
            connect_deadline: Some(now + connect_timeout),
            last_sent: now,
            last_received: now,
            ping_sent: None,
        }
    }

    pub fn on_connected(&mut self, now: u64) {
        self.connect_deadline = None;
        self.last_received = now;
    }

    pub fn on_sent(&mut self, now: u64) {
        self.last_sent = now;
    }

    /// Any packet from the broker proves it alive.
    pub fn on_received(&mut self, now: u64) {
        self.last_received = now;
        self.ping_sent = None;
    }

    pub fn on_ping_sent(&mut self, now: u64) {
        self.ping_sent = Some(now);
        self.last_sent = now;
    }

    /// When [`KeepAlive::poll`] next has something to say.
    pub fn next_due(&self) -> u64 {
        if let Some(deadline) = self.connect_deadline {
            return deadline;
        }
        match self.ping_sent {
            Some(at) => at + self.interval / 2,
            None => self.last_sent.min(self.last_received) + self.interval,
        }
    }

    pub fn poll(&self, now: u64) -> Due {
        if now < self.next_due() {
            Due::Nothing
        } else if self.connect_deadline.is_some() {
            Due::ConnectTimedOut
        } else if self.ping_sent.is_some() {
            Due::PingTimedOut
        } else {
            Due::Ping
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn a_broker_that_never_accepts_times_out() {
        let keep_alive = KeepAlive::new(1_000, 15_000, 10_000);
        assert_eq!(keep_alive.poll(10_999), Due::Nothing);
        assert_eq!(keep_alive.next_due(), 11_000);
        assert_eq!(keep_alive.poll(11_000), Due::ConnectTimedOut);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn an_idle_connection_pings_and_an_answer_keeps_it() {
        let mut keep_alive = KeepAlive::new(0, 15_000, 10_000);
        keep_alive.on_connected(100);
        keep_alive.on_sent(100);
        assert_eq!(keep_alive.poll(15_099), Due::Nothing);
        assert_eq!(keep_alive.poll(15_100), Due::Ping);
        keep_alive.on_ping_sent(15_100);
        keep_alive.on_received(15_200);
        assert_eq!(keep_alive.next_due(), 30_100);
        assert_eq!(keep_alive.poll(22_700), Due::Nothing);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn a_silent_broker_is_dead_after_one_and_a_half_intervals() {
        let mut keep_alive = KeepAlive::new(0, 15_000, 10_000);
        keep_alive.on_connected(0);
        // Publishing alone does not prove the broker is there.
        for now in (1_000..15_000).step_by(1_000) {
            keep_alive.on_sent(now);
        }
        assert_eq!(keep_alive.poll(15_000), Due::Ping);
        keep_alive.on_ping_sent(15_000);
        assert_eq!(keep_alive.poll(22_499), Due::Nothing);
        assert_eq!(keep_alive.poll(22_500), Due::PingTimedOut);
    }
}
