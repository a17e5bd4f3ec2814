//! The identity key in the browser: 32 random bytes in the origin's local storage (key
//! `peerchat.identity.<user>`), made on first start. Without local storage (a private
//! window that refuses it), a key for this page only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tracing::warn;

use std::cell::RefCell;
use std::rc::Rc;

use crate::event::ClientError;
use crate::identity::Identity;
use crate::machine::Pin;
use crate::small_map::SmallMap;

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

/// The keys pinned for peers, in local storage (`peerchat.pins.<user>`). Pins that change
/// in one turn of the page (a burst of peers) are written once, after it.
pub(crate) struct PinStorage(Rc<RefCell<Kept>>);

struct Kept {
    item: String,
    pins: SmallMap<String, Pin>,
    /// A write is due (it runs once the current turn is over).
    due: bool,
}

impl PinStorage {
    /// The pins kept for `user`. An item that does not read back whole is copied aside
    /// (`…unreadable-<ms>`) and what could be read is written anew, with a notice to show
    /// the user.
    pub fn open(user: &str) -> (Self, Option<ClientError>) {
        let item = format!("peerchat.pins.{user}");
        let storage = local_storage();
        let text = storage
            .as_ref()
            .and_then(|s| s.get_item(&item).ok().flatten());
        let (pins, damage) = text.as_deref().map(crate::pins::decode).unwrap_or_default();
        let notice = damage.map(|reason| {
            let aside = format!("{item}.unreadable-{}", js_sys::Date::now() as u64);
            let kept = storage.as_ref().is_some_and(|s| {
                s.set_item(&aside, text.as_deref().unwrap_or_default())
                    .is_ok()
                    && s.set_item(&item, &crate::pins::encode(&pins)).is_ok()
            });
            ClientError::PinsSetAside {
                location: format!("local storage `{item}`"),
                kept_aside: if kept {
                    format!("local storage `{aside}`")
                } else {
                    "(nowhere: local storage refused it)".to_owned()
                },
                reason,
            }
        });
        let kept = Kept {
            item,
            pins,
            due: false,
        };
        (Self(Rc::new(RefCell::new(kept))), notice)
    }

    pub fn pins(&self) -> std::cell::Ref<'_, SmallMap<String, Pin>> {
        std::cell::Ref::map(self.0.borrow(), |kept| &kept.pins)
    }

    /// Keeps `peer`'s pin (`None`: forgets it), written once the page's current turn ends.
    pub fn keep(&mut self, peer: String, pin: Option<Pin>) {
        let mut kept = self.0.borrow_mut();
        crate::pins::set(&mut kept.pins, peer, pin);
        if !kept.due {
            kept.due = true;
            let later = self.0.clone();
            wasm_bindgen_futures::spawn_local(async move { write(&later) });
        }
    }

    /// Writes what is due now.
    pub async fn closed(self) {
        write(&self.0);
    }
}

fn write(kept: &RefCell<Kept>) {
    let mut kept = kept.borrow_mut();
    if !kept.due {
        return;
    }
    kept.due = false;
    let saved = local_storage().is_some_and(|s| {
        s.set_item(&kept.item, &crate::pins::encode(&kept.pins))
            .is_ok()
    });
    if !saved {
        warn!("no local storage: pinned keys last for this page only");
    }
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}
