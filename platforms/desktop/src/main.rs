//! Launches peerchat's UI in a native window.

fn main() {
    dioxus::launch(peerchat_ui::App);
}
