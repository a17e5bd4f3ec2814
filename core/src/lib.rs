//! peerchat's platform-agnostic client: the wire protocol, the sans-IO client state machine,
//! the event API, and the transport backends (webrtc-rs on native, web-sys in the browser).
//!
//! Layers, from the wire up: [`protocol`] (typed messages and limits), [`machine`] (every
//! decision, no I/O), a backend (executes the machine's actions), and [`Client`] (the API).

pub mod event;
pub mod machine;
pub mod options;
pub mod protocol;
pub mod server_url;

pub use event::{ClientError, ClientEvent, PeerStatus, SignalingState};
pub use machine::ClientMachine;
pub use options::{ClientOptions, IceServer};

cfg_if::cfg_if! {
    if #[cfg(feature = "native")] {
        mod native;
        use native as backend;
    }
}

#[cfg(feature = "native")]
mod client;
#[cfg(feature = "native")]
pub use client::{Client, Events};
