//! Launches peerchat's UI on Android.

fn main() {
    dioxus::launch(peerchat_ui::App);
}
