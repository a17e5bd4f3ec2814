//! The native backend: webrtc-rs peer connections and rumqttc signaling, on Tokio.
//!
//! A driver only: [`crate::backend`] routes the machine's actions here and every decision
//! lives in [`crate::machine`].

pub(crate) mod identity_file;
pub(crate) mod local_names;
pub(crate) mod network_watch;
pub(crate) mod rt;
pub(crate) mod signaling;
mod sockets;
#[cfg(not(target_os = "android"))]
pub(crate) mod store;
/// Android keeps history in memory for now (see `Cargo.toml`).
#[cfg(target_os = "android")]
#[path = "store_memory.rs"]
pub(crate) mod store;
pub(crate) mod transport;

/// This user's identity key on this device (see [`identity_file`]).
pub(crate) fn load_identity(
    options: &crate::options::ClientOptions,
) -> Option<crate::identity::Identity> {
    Some(identity_file::load_or_create(
        &options.username,
        options.identity_file.as_deref(),
    ))
}

/// Where pinned keys are kept (see [`identity_file::PinFile`]).
pub(crate) type PinStore = identity_file::PinFile;

/// The pins kept for this user, and a notice if some could not be read.
pub(crate) fn open_pins(
    options: &crate::options::ClientOptions,
) -> (PinStore, Option<crate::event::ClientError>) {
    identity_file::PinFile::open(&options.username, options.identity_file.as_deref())
}
