//! Launches peerchat's UI in a native window (Dioxus desktop: a WebKitGTK webview on Linux).
//!
//! The UI's native client starts its work with `tokio::spawn`, so components and event
//! handlers must run inside a Tokio runtime. Dioxus desktop provides one: with its default
//! `tokio_runtime` feature (which the `dioxus` crate's `desktop` feature keeps on) it builds a
//! multi-thread runtime and runs the window's event loop inside `block_on`, so the UI thread
//! is always in the runtime's context and spawned tasks run on its worker threads. This
//! launcher therefore sets up no runtime of its own.

use dioxus::desktop::{Config, LogicalSize, WindowBuilder};

fn main() {
    let window = WindowBuilder::new()
        .with_title("peerchat")
        .with_inner_size(LogicalSize::new(960.0, 720.0))
        .with_min_inner_size(LogicalSize::new(360.0, 480.0));
    dioxus::LaunchBuilder::desktop()
        // No menu bar: the default one holds only generic window and edit entries.
        .with_cfg(Config::new().with_window(window).with_menu(None))
        .launch(peerchat_ui::App);
}
