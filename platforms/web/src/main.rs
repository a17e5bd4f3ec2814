//! Launches peerchat's UI in the browser. Build it with `platforms/web/build.sh`, which
//! compiles this for wasm32-unknown-unknown and lays out the static bundle.

#[cfg(target_arch = "wasm32")]
fn main() {
    dioxus::launch(peerchat_ui::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "peerchat-web runs in a browser: build it with platforms/web/build.sh and serve it \
         with platforms/web/serve.sh"
    );
    std::process::exit(2);
}
