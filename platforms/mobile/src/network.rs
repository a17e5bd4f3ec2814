//! Process-wide notice that the device's default network changed (Wi-Fi to mobile data,
//! lost, regained). Android lets apps learn this only through Java's `ConnectivityManager`,
//! so `platforms/android/MainActivity.kt` forwards each change here through JNI.
//!
//! The core's connection recovery (next issue) subscribes here, handed a subscription by
//! this launcher, to restart ICE on the new network; until then nothing subscribes and a
//! change is dropped.

use std::sync::{Mutex, MutexGuard, PoisonError};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};

/// Everyone waiting for network changes; a closed receiver is removed at the next change.
static SUBSCRIBERS: Mutex<Vec<UnboundedSender<()>>> = Mutex::new(Vec::new());

/// A stream that yields `()` each time the default network changes from now on.
pub fn subscribe() -> UnboundedReceiver<()> {
    let (sender, receiver) = unbounded();
    lock_subscribers().push(sender);
    receiver
}

/// Tells every subscriber that the default network changed. Never blocks, so it is safe on
/// the Java thread that reports the change.
pub fn notify_changed() {
    lock_subscribers().retain(|sender| sender.unbounded_send(()).is_ok());
}

fn lock_subscribers() -> MutexGuard<'static, Vec<UnboundedSender<()>>> {
    // The list stays valid even if a holder panicked: every operation on it is one call.
    SUBSCRIBERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `MainActivity.onNetworkChanged()`, declared `external` in Kotlin: the JNI name encodes
/// the class `dev.dioxus.main.MainActivity` that dx requires for the app's activity. The
/// JNI environment and the activity are not used, so they stay opaque pointers.
#[cfg(target_os = "android")]
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_dioxus_main_MainActivity_onNetworkChanged(
    _env: *mut std::ffi::c_void,
    _activity: *mut std::ffi::c_void,
) {
    notify_changed();
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn every_subscriber_hears_a_change_and_dropped_ones_are_forgotten() {
        let mut first = subscribe();
        let second = subscribe();
        drop(second);

        notify_changed();

        assert_eq!(futures::executor::block_on(first.next()), Some(()));
        assert!(lock_subscribers().iter().all(|sender| !sender.is_closed()));
    }
}
