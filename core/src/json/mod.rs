//! peerchat's own small JSON: a value, a reader and a writer, for everything the client
//! says and reads as JSON (signaling, chat and room frames, pins, `--json` events).
//!
//! Why not `serde_json`: in the web app, serde's generic reader and writer were 35 KB of
//! the wasm, and this module is 12 KB. It reads and writes the same texts (objects keep
//! their keys sorted, strings are escaped the same way), so the wire does not change; a
//! differential fuzz target (`fuzz/fuzz_targets/json.rs`) and the tests beside it hold it
//! to `serde_json`'s answers.

mod parse;
mod value;
mod write;

pub use parse::{JsonError, parse, parse_bytes};
pub use value::{Map, Number, ToJson, Value};
pub use write::write_string;

/// A [`Value`] from a JSON-like literal: `json!({"type": "ack", "id": id})` for an object
/// of expressions (each borrowed, as by [`ToJson`]), `json!(expr)` for anything else.
#[macro_export]
macro_rules! json {
    ({ $($key:literal : $value:expr),* $(,)? }) => {{
        #[allow(unused_mut)]
        let mut object = $crate::json::Map::new();
        $(
            object.insert(::std::string::String::from($key), $crate::json::ToJson::to_json(&$value));
        )*
        $crate::json::Value::Object(object)
    }};
    ($value:expr) => {
        $crate::json::ToJson::to_json(&$value)
    };
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
