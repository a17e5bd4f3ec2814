//! Pinned identity keys, kept across restarts with the identity key itself (a file beside
//! it on native, local storage in the browser): trust on first use means first use ever,
//! not first use since the app started. The text form is a JSON object,
//! `{"<peer>": {"key": "<base64url>", "verified": false, "seal": 2}, ...}` (`seal`, the
//! newest seal format the peer used, is 1 when absent: files of earlier versions).
//!
//! Text that does not read back whole is never dropped quietly: the platform keeps it aside
//! and says so (see [`crate::event::ClientError::PinsSetAside`]).

use crate::identity::PublicKey;
use crate::machine::Pin;
use crate::small_map::SmallMap;

/// The pins in `text`, and why some could not be read, if any could not: the file as a
/// whole (nothing is read) or some entries (the rest are).
pub(crate) fn decode(text: &str) -> (SmallMap<String, Pin>, Option<String>) {
    let entries = match crate::json::parse(text) {
        Ok(crate::json::Value::Object(entries)) => entries,
        Ok(other) => {
            return (
                SmallMap::new(),
                Some(format!("not a pins file: a JSON {}", other.kind())),
            );
        }
        Err(error) => return (SmallMap::new(), Some(format!("not a pins file: {error}"))),
    };
    let mut pins = SmallMap::new();
    let mut unreadable = Vec::new();
    for (peer, entry) in entries {
        let pin = read_pin(&entry);
        match pin {
            Some(pin) => {
                pins.insert(peer, pin);
            }
            None => unreadable.push(peer),
        }
    }
    let reason = (!unreadable.is_empty()).then(|| {
        let names: Vec<String> = unreadable
            .iter()
            .take(8)
            .map(|n| format!("`{n}`"))
            .collect();
        let more = unreadable.len().saturating_sub(names.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("the pins of {}{more} are damaged", names.join(", "))
    });
    (pins, reason)
}

/// Sets `peer`'s pin in `pins` (`None`: forgets it).
pub(crate) fn set(pins: &mut SmallMap<String, Pin>, peer: String, pin: Option<Pin>) {
    match pin {
        Some(pin) => pins.insert(peer, pin),
        None => pins.remove(&peer),
    };
}

/// One peer's entry; `None` when a field is missing or of the wrong kind, or the key is
/// no key.
fn read_pin(entry: &crate::json::Value) -> Option<Pin> {
    let seal_version = match entry.get("seal") {
        None => FIRST_SEAL_FORMAT,
        Some(seal) => u8::try_from(seal.as_u64()?).ok()?,
    };
    Some(Pin {
        key: PublicKey::parse(entry.get("key")?.as_str()?)?,
        verified: entry.get("verified")?.as_bool()?,
        seal_version,
    })
}

/// The seal format of a pin written before pins named one.
const FIRST_SEAL_FORMAT: u8 = 1;

pub(crate) fn encode(pins: &SmallMap<String, Pin>) -> String {
    let entries = (pins.iter()).map(|(peer, pin)| {
        let entry = crate::json!({
            "key": pin.key.to_text(), "verified": pin.verified, "seal": pin.seal_version,
        });
        (peer.clone(), entry)
    });
    crate::json::Value::Object(entries.collect()).to_pretty_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn pins_round_trip_and_damage_is_reported_not_dropped_quietly() {
        let key = Identity::from_seed([4; 32]).public();
        let pins = SmallMap::from([(
            "bob".to_owned(),
            Pin {
                key,
                verified: true,
                seal_version: 2,
            },
        )]);
        assert_eq!(decode(&encode(&pins)), (pins.clone(), None));
        // A file of an earlier version: no seal format, so the first.
        let old = format!(
            r#"{{"bob": {{"key": "{}", "verified": true}}}}"#,
            key.to_text()
        );
        assert_eq!(decode(&old).0["bob"].seal_version, 1);
        // One damaged entry: the others are read, and the damage is named.
        let mixed = format!(
            r#"{{"bob": {{"key": "{}", "verified": true, "seal": 2}}, "eve": {{"key": "nope", "verified": false}}}}"#,
            key.to_text()
        );
        let (read, reason) = decode(&mixed);
        assert_eq!(read, pins);
        assert!(reason.unwrap().contains("`eve`"));
        // Not JSON at all: nothing read, and said so.
        let (read, reason) = decode("not json");
        assert!(read.is_empty());
        assert!(reason.unwrap().contains("not a pins file"));
    }
}
