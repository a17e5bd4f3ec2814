//! peerchat's user interface, one Dioxus component tree for the web, the desktop and
//! Android. The launchers in `platforms/` pick the renderer and the core's backend.

use dioxus::prelude::*;

/// The whole app.
#[component]
pub fn App() -> Element {
    rsx! {
        main { "peerchat" }
    }
}
