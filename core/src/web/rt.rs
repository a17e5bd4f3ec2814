//! The runtime pieces the driver needs in the browser: spawning on the page's event loop,
//! timers, a monotonic clock and randomness.
//!
//! Browser and worker globals are looked up through `globalThis`, so this works in both.

use std::future::Future;
use std::time::Duration;

use js_sys::{Math, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Crypto, Performance};

/// Runs a future on the page's event loop. Nothing in the browser is `Send`, and nothing
/// needs to be: there is one thread.
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    wasm_bindgen_futures::spawn_local(future);
}

/// `setTimeout` takes a signed 32-bit delay and fires at once above it, so longer waits are
/// clamped (to about 24 days).
pub async fn sleep(duration: Duration) {
    let millis = u32::try_from(duration.as_millis())
        .unwrap_or(u32::MAX)
        .min(i32::MAX as u32);
    gloo_timers::future::TimeoutFuture::new(millis).await;
}

/// Milliseconds since the client started: the machine's notion of time.
#[derive(Debug, Clone, Copy)]
pub struct Clock(f64);

impl Clock {
    pub fn new() -> Self {
        Self(now_ms())
    }

    pub fn now(&self) -> u64 {
        (now_ms() - self.0).max(0.0) as u64
    }
}

thread_local! {
    static PERFORMANCE: Option<Performance> = global::<Performance>("performance");
    static CRYPTO: Option<Crypto> = global::<Crypto>("crypto");
}

/// A property of `globalThis` (a window or a worker), if it has one of that type.
fn global<T: JsCast>(name: &str) -> Option<T> {
    Reflect::get(&js_sys::global(), &JsValue::from_str(name))
        .ok()
        .and_then(|value| value.dyn_into::<T>().ok())
}

/// `performance.now()` is monotonic; `Date.now()` only stands in where it is missing.
fn now_ms() -> f64 {
    PERFORMANCE.with(|performance| {
        performance
            .as_ref()
            .map_or_else(js_sys::Date::now, Performance::now)
    })
}

/// 64 random bits from `crypto.getRandomValues`, or `Math.random` where that is missing
/// (a session id and a backoff jitter need no more).
/// Wall-clock time: ms since the Unix epoch.
pub fn wall_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// 32 bytes from the browser's secure random source, if it has one.
pub fn secure_seed() -> Option<[u8; 32]> {
    let mut seed = [0u8; 32];
    let filled = CRYPTO.with(|crypto| {
        crypto
            .as_ref()
            .is_some_and(|c| c.get_random_values_with_u8_array(&mut seed).is_ok())
    });
    filled.then_some(seed)
}

pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    let filled = CRYPTO.with(|crypto| {
        crypto
            .as_ref()
            .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok())
    });
    if filled {
        u64::from_le_bytes(bytes)
    } else {
        let half = || (Math::random() * 4_294_967_296.0) as u64;
        (half() << 32) | half()
    }
}

/// A fresh id for one run of the client.
pub fn session_id() -> String {
    format!("{:016x}", random_u64())
}
