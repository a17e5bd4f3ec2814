//! The identity key in the browser: 32 random bytes in the origin's local storage (key
//! `peerchat.identity.<user>`), made on first start. Without local storage (a private
//! window that refuses it), a key for this page only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tracing::warn;

use crate::identity::Identity;

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
