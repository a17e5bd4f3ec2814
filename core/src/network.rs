//! Hints that the device's network changed (Wi-Fi to mobile data, a new Wi-Fi, back online),
//! so chats and the broker connection move at once instead of waiting for timeouts to
//! notice a path that no longer exists (see `machine::recovery`).
//!
//! Hints come from the platform and reach every live client in the process:
//! - Linux desktops: the kernel's routing notifications (`native::network_watch`);
//! - browsers: the `online` event and Network Information's `change` (`web::network_watch`);
//! - Android, which forbids apps those notifications: the launcher calls
//!   [`notify_changed`] from `ConnectivityManager`'s callback.

use std::sync::Weak;

use crate::client::{Inbox, Input, InputSender};
use crate::platform::network_watch;

/// Tells every client in this process that the network changed. Cheap and non-blocking,
/// so it may be called from any thread, including a JNI callback.
pub fn notify_changed() {
    with_listeners(|listeners| {
        listeners.retain(|inbox| match inbox.upgrade() {
            Some(inbox) => {
                // Handled by each client's driver, on its own runtime.
                InputSender::from(inbox).post(Input::NetworkChanged);
                true
            }
            None => false,
        });
    });
}

/// Makes `inputs` hear network changes from now on, and starts the platform's watcher the
/// first time.
pub(crate) fn listen(inputs: &InputSender) {
    with_listeners(|listeners| listeners.push(inputs.downgrade()));
    network_watch::start_once();
}

cfg_if::cfg_if! {
    if #[cfg(target_arch = "wasm32")] {
        // A page has one thread, and its clients are not `Send`.
        thread_local! {
            static LISTENERS: std::cell::RefCell<Vec<Weak<Inbox>>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }

        fn with_listeners(f: impl FnOnce(&mut Vec<Weak<Inbox>>)) {
            LISTENERS.with(|listeners| f(&mut listeners.borrow_mut()));
        }
    } else {
        static LISTENERS: std::sync::Mutex<Vec<Weak<Inbox>>> = std::sync::Mutex::new(Vec::new());

        fn with_listeners(f: impl FnOnce(&mut Vec<Weak<Inbox>>)) {
            f(&mut LISTENERS.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }
}
