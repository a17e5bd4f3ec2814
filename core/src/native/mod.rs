//! The native backend: webrtc-rs peer connections and rumqttc signaling, on Tokio.
//!
//! A driver only: [`crate::backend`] routes the machine's actions here and every decision
//! lives in [`crate::machine`].

pub(crate) mod local_names;
pub(crate) mod network_watch;
pub(crate) mod rt;
pub(crate) mod signaling;
mod sockets;
pub(crate) mod store;
pub(crate) mod transport;
