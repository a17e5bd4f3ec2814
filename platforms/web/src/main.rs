//! Launches peerchat's UI in the browser (build for wasm32-unknown-unknown).

fn main() {
    dioxus::launch(peerchat_ui::App);
}
