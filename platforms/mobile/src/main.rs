//! The Android app's entry point; everything it starts lives in the `peerchat_mobile` library.

fn main() {
    peerchat_mobile::launch();
}
