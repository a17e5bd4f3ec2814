//! peerchat on Android: launches the shared UI on the mobile renderer and receives the
//! platform's hooks (network changes) from the app's Kotlin activity.
//!
//! The launcher is a library with a one-line `main`, so the hook's API is public before
//! anything in Rust uses it. Its JNI export reaches the app's dynamic symbol table like any
//! `#[no_mangle]` function of a dependency (dx links Android apps with `--export-dynamic`).

pub mod network;

/// Starts the UI; returns only when the app exits.
pub fn launch() {
    dioxus::launch(peerchat_ui::App);
}
