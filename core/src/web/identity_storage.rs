//! The identity key in the browser: 32 random bytes in the origin's local storage (key
//! `peerchat.identity.<user>`), made on first start. Without local storage (a private
//! window that refuses it), a key for this page only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tracing::warn;

use std::collections::BTreeMap;

use crate::identity::Identity;
use crate::machine::Pin;

pub(crate) fn load_or_create(user: &str) -> Option<Identity> {
    let storage = web_sys::window().and_then(|w| w.local_storage().ok().flatten());
    let item = format!("peerchat.identity.{user}");
    let kept = storage
        .as_ref()
        .and_then(|s| s.get_item(&item).ok().flatten())
        .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
    if let Some(seed) = kept {
        return Some(Identity::from_seed(seed));
    }
    // Without the browser's secure random source there is no key worth the name.
    let seed = super::rt::secure_seed()?;
    let saved = storage.is_some_and(|s| s.set_item(&item, &URL_SAFE_NO_PAD.encode(seed)).is_ok());
    if !saved {
        warn!("no local storage: the identity key lasts for this page only");
    }
    Some(Identity::from_seed(seed))
}

/// The keys pinned for peers, in local storage (`peerchat.pins.<user>`).
pub(crate) struct PinStorage {
    item: String,
    pins: BTreeMap<String, Pin>,
}

impl PinStorage {
    pub fn open(user: &str) -> Self {
        let item = format!("peerchat.pins.{user}");
        let text = local_storage().and_then(|s| s.get_item(&item).ok().flatten());
        let pins = text.as_deref().map(crate::pins::decode).unwrap_or_default();
        Self { item, pins }
    }

    pub fn pins(&self) -> &BTreeMap<String, Pin> {
        &self.pins
    }

    /// Keeps `peer`'s pin (`None`: forgets it).
    pub fn keep(&mut self, peer: String, pin: Option<Pin>) {
        crate::pins::set(&mut self.pins, peer, pin);
        let saved = local_storage().is_some_and(|s| {
            s.set_item(&self.item, &crate::pins::encode(&self.pins))
                .is_ok()
        });
        if !saved {
            warn!("no local storage: pinned keys last for this page only");
        }
    }
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}
