//! The JSON module held to `serde_json`'s answers: the same texts accepted and refused,
//! the same values read, the same text written.

use proptest::prelude::*;

use super::{Number, Value, parse, parse_bytes};

/// The same value as `serde_json` holds it.
fn to_serde(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(Number::Unsigned(n)) => (*n).into(),
        Value::Number(Number::Negative(n)) => (*n).into(),
        Value::Number(Number::Float(n)) => {
            serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, Into::into)
        }
        Value::String(s) => s.clone().into(),
        Value::Array(items) => items.iter().map(to_serde).collect(),
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| (k.clone(), to_serde(v)))
            .collect(),
    }
}

/// Equal, floats within a rounding step (`serde_json`'s default float reader is not
/// always exact in the last bit).
fn same(ours: &serde_json::Value, theirs: &serde_json::Value) -> bool {
    use serde_json::Value as S;
    match (ours, theirs) {
        (S::Number(a), S::Number(b)) if a.is_f64() && b.is_f64() => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            let step = (a.abs().max(b.abs()) * f64::EPSILON).max(f64::from_bits(1));
            a == b || (a - b).abs() <= 4.0 * step
        }
        (S::Array(a), S::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        (S::Object(a), S::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        _ => ours == theirs,
    }
}

/// Both readers agree on `bytes`: both refuse it, or both read the same value.
pub(crate) fn agree_with_serde(bytes: &[u8]) -> Result<(), String> {
    let ours = parse_bytes(bytes);
    let theirs = serde_json::from_slice::<serde_json::Value>(bytes);
    match (&ours, &theirs) {
        (Ok(ours), Ok(theirs)) if same(&to_serde(ours), theirs) => Ok(()),
        (Err(_), Err(_)) => Ok(()),
        _ => Err(format!(
            "{:?}: ours {ours:?}, serde_json {theirs:?}",
            String::from_utf8_lossy(bytes)
        )),
    }
}

#[test]
fn texts_read_as_serde_json_reads_them() {
    let cases: &[&str] = &[
        "null",
        " true ",
        "false",
        "0",
        "-0",
        "1",
        "-1",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "1.5",
        "-1.5e-7",
        "1E400",
        "1e-400",
        "0e99999",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "1e+",
        "+1",
        "\"a\\u00e9\\ud83d\\ude00\"",
        "\"\\ud83d\"",
        "\"\\ude00\"",
        "\"\\ud83dx\"",
        "\"\\x\"",
        "\"\u{1}\"",
        "\"tab\tin\"",
        "\"é ∑ 😀\"",
        "[1,2,]",
        "[,]",
        "[]",
        "{}",
        "{\"a\":1,\"a\":2}",
        "{\"a\" 1}",
        "{1:2}",
        "{\"a\":1,}",
        "[1] x",
        "",
        "   ",
        "nul",
        "truex",
        "{\"b\":[{\"c\":null}],\"a\":\"x\"}",
        "\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
        "[1e16, 12345678901234567890123]",
    ];
    for case in cases {
        agree_with_serde(case.as_bytes()).unwrap();
    }
    agree_with_serde(b"\"\xff\"").unwrap();
    agree_with_serde(b"[\"\xc3\xa9\"]").unwrap();
}

#[test]
fn nesting_stops_where_serde_json_stops() {
    for depth in [126, 127, 128, 129, 10_000] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        agree_with_serde(text.as_bytes()).unwrap();
        let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        agree_with_serde(objects.as_bytes()).unwrap();
    }
    assert!(parse(&"[".repeat(127).to_string()).is_err());
    assert_eq!(
        parse(&format!("{}{}", "[".repeat(128), "]".repeat(128)))
            .unwrap_err()
            .what,
        "recursion limit exceeded"
    );
}

#[test]
fn errors_say_what_and_where() {
    let error = parse("{\"a\":tru}").unwrap_err();
    assert_eq!((error.what, error.at), ("expected ident", 9));
    assert_eq!(error.to_string(), "expected ident at byte 9");
}

#[test]
fn indexing_reads_missing_fields_as_null_and_sets_fields() {
    let mut value = crate::json!({"event": "sent", "n": 3_u64});
    assert_eq!(value["event"], "sent");
    assert!(value["gone"].is_null() && value[0].is_null() && value["n"]["deeper"].is_null());
    value["id"] = Value::from(7_u64);
    assert_eq!(value.to_string(), r#"{"event":"sent","id":7,"n":3}"#);
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| Value::Number(Number::Unsigned(n))),
        (i64::MIN..0).prop_map(|n| Value::Number(Number::Negative(n))),
        any::<f64>()
            .prop_filter("finite", |n| n.is_finite())
            .prop_map(|n| Value::Number(Number::Float(n))),
        "(\\PC|[\u{0}-\u{1f}\"\\\\/])*".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn written_text_is_what_serde_json_writes_and_reads_back(value in any_value()) {
        let text = value.to_string();
        let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert!(same(&to_serde(&value), &theirs), "{text}");
        let back = parse(&text).unwrap();
        prop_assert_eq!(&back, &value);
        if !text.contains(['.', 'e']) {
            prop_assert_eq!(&text, &serde_json::to_string(&theirs).unwrap());
            prop_assert_eq!(value.to_pretty_string(), serde_json::to_string_pretty(&theirs).unwrap());
        }
    }

    #[test]
    fn any_text_is_refused_or_read_as_serde_json_reads_it(
        text in "[ \\[\\]{}:,\"\\\\/ntrufalse0-9.eE+\\-ud8a-fA-F\u{1}é]{0,40}"
    ) {
        prop_assert!(agree_with_serde(text.as_bytes()).is_ok(), "{:?}", agree_with_serde(text.as_bytes()));
    }

    #[test]
    fn damaged_real_text_is_refused_or_read_as_serde_json_reads_it(
        value in any_value(), cut in any::<prop::sample::Index>(), byte in any::<u8>()
    ) {
        let mut bytes = value.to_string().into_bytes();
        let at = cut.index(bytes.len() + 1);
        bytes.insert(at, byte);
        prop_assert!(agree_with_serde(&bytes).is_ok(), "{:?}", agree_with_serde(&bytes));
        bytes.truncate(at);
        prop_assert!(agree_with_serde(&bytes).is_ok(), "{:?}", agree_with_serde(&bytes));
    }
}
