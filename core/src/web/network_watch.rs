//! Network changes in the browser: the window's `online` event (the device found a network
//! again) and, where the browser has the Network Information API, its `change` event (for
//! instance Wi-Fi to cellular). Either is passed to [`crate::network::notify_changed`].

use std::cell::Cell;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;

thread_local! {
    static STARTED: Cell<bool> = const { Cell::new(false) };
}

/// Listens from now on, once per page; later calls do nothing.
pub(crate) fn start_once() {
    if STARTED.with(|started| started.replace(true)) {
        return;
    }
    let Some(window) = web_sys::window() else {
        return;
    };
    // Lives as long as the page: the listeners serve every client it will have.
    let changed = Closure::<dyn Fn()>::new(crate::network::notify_changed).into_js_value();
    let listener = changed.unchecked_ref();
    let _ = window.add_event_listener_with_callback("online", listener);
    let connection = js_sys::Reflect::get(&window.navigator(), &"connection".into())
        .ok()
        .and_then(|c| c.dyn_into::<web_sys::EventTarget>().ok());
    if let Some(connection) = connection {
        let _ = connection.add_event_listener_with_callback("change", listener);
    }
}
