//! The device's default network changed (Wi-Fi to mobile data, lost, regained). Android lets
//! apps learn this only through Java's `ConnectivityManager`, so
//! `platforms/android/MainActivity.kt` forwards each change here through JNI, and every
//! client in the app moves its chats and broker connection at once
//! ([`peerchat_core::network`]).

/// `MainActivity.onNetworkChanged()`, declared `external` in Kotlin: the JNI name encodes
/// the class `dev.dioxus.main.MainActivity` that dx requires for the app's activity. The
/// JNI environment and the activity are not used, so they stay opaque pointers. Never
/// blocks, so it is safe on the Java thread that reports the change.
#[cfg(target_os = "android")]
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_dioxus_main_MainActivity_onNetworkChanged(
    _env: *mut std::ffi::c_void,
    _activity: *mut std::ffi::c_void,
) {
    peerchat_core::network::notify_changed();
}
