//! peerchat's platform-agnostic client: the wire protocol, the sans-IO client state machine,
//! the event API, and the transport backends (webrtc-rs on native, web-sys in the browser).
//!
//! Layers, from the wire up: [`protocol`] (typed messages and limits), [`machine`] (every
//! decision, no I/O), a backend (executes the machine's actions), and [`Client`] (the API).

pub mod event;
pub mod identity;
pub mod json;
pub mod machine;
pub mod options;
pub mod path;
#[cfg(any(feature = "native", feature = "web"))]
mod pins;
pub mod protocol;
pub mod reconnect;
pub mod room;
pub mod server_url;
pub mod small_map;
pub mod store;

pub use event::{ChatEnd, ClientError, ClientEvent, PeerStatus, SignalingState};
pub use machine::ClientMachine;
pub use options::{ClientOptions, IceServer};
pub use path::{PathKind, PeerPath};
pub use store::{Storage, StoredMessage};

// The platform is chosen at compile time: webrtc-rs and rumqttc on native targets, the
// browser's APIs on wasm32. Both supply the same `rt`, `signaling` and `transport` shapes
// that `backend.rs` routes to and `client.rs` drives; neither holds protocol logic.
cfg_if::cfg_if! {
    if #[cfg(all(feature = "web", target_arch = "wasm32"))] {
        mod web;
        use web as platform;
        mod backend;
        mod client;
        pub mod network;
        mod unread;
        pub use client::{Client, Events};
    } else if #[cfg(all(feature = "native", not(target_arch = "wasm32")))] {
        mod native;
        use native as platform;
        mod backend;
        mod client;
        pub mod network;
        mod unread;
        pub use client::{Client, Events};
    }
}

/// MQTT framing over the browser's WebSocket, used by the web backend. Public (but not
/// part of the API) only so that fuzz targets reach it natively.
#[cfg(feature = "web")]
#[doc(hidden)]
pub mod mqtt_frames;

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
