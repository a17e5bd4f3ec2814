//! The browser backend (wasm32): `RTCPeerConnection` peer connections and an MQTT client
//! over the page's WebSocket, through web-sys.
//!
//! A driver only, like the native backend: [`crate::backend`] routes the machine's actions
//! here and every decision lives in [`crate::machine`].

pub(crate) mod identity_storage;
mod keepalive;
pub(crate) mod network_watch;
pub(crate) mod rt;
pub(crate) mod signaling;
mod socket;
mod stats;
pub(crate) mod store;
pub(crate) mod transport;

use wasm_bindgen::{JsCast, JsValue};

/// A JS exception as text for an error message: `name: message` for `Error`s (which
/// include the `DOMException`s WebRTC throws), the value itself otherwise.
fn describe_js_error(value: &JsValue) -> String {
    match value.dyn_ref::<js_sys::Error>() {
        Some(error) => format!(
            "{}: {}",
            String::from(error.name()),
            String::from(error.message())
        ),
        None => value.as_string().unwrap_or_else(|| format!("{value:?}")),
    }
}

/// This user's identity key in this browser (see [`identity_storage`]).
pub(crate) fn load_identity(
    options: &crate::options::ClientOptions,
) -> Option<crate::identity::Identity> {
    identity_storage::load_or_create(&options.username)
}

/// Where pinned keys are kept (see [`identity_storage::PinStorage`]).
pub(crate) type PinStore = identity_storage::PinStorage;

/// The pins kept for this user, and a notice if some could not be read.
pub(crate) fn open_pins(
    options: &crate::options::ClientOptions,
) -> (PinStore, Option<crate::event::ClientError>) {
    identity_storage::PinStorage::open(&options.username)
}
