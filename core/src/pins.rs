//! Pinned identity keys, kept across restarts with the identity key itself (a file beside
//! it on native, local storage in the browser): trust on first use means first use ever,
//! not first use since the app started. The text form is a JSON object,
//! `{"<peer>": {"key": "<base64url>", "verified": false}, ...}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::identity::PublicKey;
use crate::machine::Pin;

#[derive(Serialize, Deserialize)]
struct Kept {
    key: String,
    verified: bool,
}

/// The pins in `text`; entries that do not parse are left out (and get pinned anew).
pub(crate) fn decode(text: &str) -> BTreeMap<String, Pin> {
    let kept: BTreeMap<String, Kept> = serde_json::from_str(text).unwrap_or_default();
    kept.into_iter()
        .filter_map(|(peer, kept)| {
            let key = PublicKey::parse(&kept.key)?;
            Some((
                peer,
                Pin {
                    key,
                    verified: kept.verified,
                },
            ))
        })
        .collect()
}

/// Sets `peer`'s pin in `pins` (`None`: forgets it).
pub(crate) fn set(pins: &mut BTreeMap<String, Pin>, peer: String, pin: Option<Pin>) {
    match pin {
        Some(pin) => pins.insert(peer, pin),
        None => pins.remove(&peer),
    };
}

pub(crate) fn encode(pins: &BTreeMap<String, Pin>) -> String {
    let kept: BTreeMap<&str, Kept> = (pins.iter())
        .map(|(peer, pin)| {
            let kept = Kept {
                key: pin.key.to_text(),
                verified: pin.verified,
            };
            (peer.as_str(), kept)
        })
        .collect();
    serde_json::to_string_pretty(&kept).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn pins_round_trip_and_bad_entries_are_dropped() {
        let key = Identity::from_seed([4; 32]).public();
        let pins = BTreeMap::from([(
            "bob".to_owned(),
            Pin {
                key,
                verified: true,
            },
        )]);
        assert_eq!(decode(&encode(&pins)), pins);
        let bad = r#"{"eve": {"key": "nope", "verified": false}}"#;
        assert!(decode(bad).is_empty());
        assert!(decode("not json").is_empty());
    }
}
