//! peerchat's JSON reader against `serde_json`'s on any bytes: both accept a text or both
//! refuse it, and what peerchat reads it writes back to a text that reads as the same.
//! It must never panic or recurse without bound, whatever a peer or the broker sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerchat_core::json::parse_bytes;

fuzz_target!(|data: &[u8]| {
    let ours = parse_bytes(data);
    let theirs = serde_json::from_slice::<serde_json::Value>(data);
    assert_eq!(
        ours.is_ok(),
        theirs.is_ok(),
        "{:?}: peerchat {ours:?}, serde_json {theirs:?}",
        String::from_utf8_lossy(data)
    );
    if let Ok(value) = ours {
        let text = value.to_string();
        assert_eq!(parse_bytes(text.as_bytes()), Ok(value), "{text}");
    }
});
