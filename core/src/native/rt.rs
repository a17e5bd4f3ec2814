//! The runtime pieces the driver needs on native: spawning, sleeping, a clock, randomness.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

pub fn spawn(future: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(future);
}

pub async fn sleep(duration: Duration) {
    tokio::time::sleep(duration).await
}

/// Milliseconds since the client started: the machine's notion of time.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn new() -> Self {
        Self(Instant::now())
    }

    pub fn now(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// 64 random bits. `RandomState` is seeded from the OS, which is all a session id or a
/// backoff jitter needs; no extra dependency.
pub fn random_u64() -> u64 {
    RandomState::new().hash_one(Instant::now())
}

/// Wall-clock time: ms since the Unix epoch.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A fresh id for one run of the client.
pub fn session_id() -> String {
    format!("{:016x}", random_u64())
}
