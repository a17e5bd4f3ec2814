//! The small JSON toolkit behind the signaling codec: an object writer that keeps fields in
//! the order given, and typed field readers over a parsed object.
//!
//! Hand-written rather than derived: serde's derived codecs for the signaling types were
//! ~50 KB of the web app's wasm. The writer's fixed order also makes the text a seal signs
//! (`capabilities_text`, a candidate's body) independent of how a map orders its keys.

use crate::json::{Map, Value};

/// Writes one JSON object, field by field, in the order of the calls.
pub struct ObjectWriter {
    text: String,
}

impl ObjectWriter {
    pub fn new() -> Self {
        Self {
            text: String::from("{"),
        }
    }

    fn key(&mut self, name: &str) {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        push_string(&mut self.text, name);
        self.text.push(':');
    }

    pub fn str(mut self, name: &str, value: &str) -> Self {
        self.key(name);
        push_string(&mut self.text, value);
        self
    }

    /// A string field written only when present.
    pub fn opt_str(self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.str(name, value),
            None => self,
        }
    }

    /// A field that is `null` when absent (the original client's shape for `sdpMid`).
    pub fn str_or_null(self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.str(name, value),
            None => self.raw(name, "null"),
        }
    }

    /// A field of JSON text written only when present.
    pub fn opt_raw(self, name: &str, json: Option<String>) -> Self {
        match json {
            Some(json) => self.raw(name, &json),
            None => self,
        }
    }

    /// A number field written only when present.
    pub fn opt_number(self, name: &str, value: Option<u64>) -> Self {
        match value {
            Some(value) => self.number(name, value),
            None => self,
        }
    }

    pub fn number(mut self, name: &str, value: u64) -> Self {
        self.key(name);
        self.text.push_str(&value.to_string());
        self
    }

    /// A number field that is `null` when absent (the original client's `sdpMLineIndex`).
    pub fn number_or_null(self, name: &str, value: Option<u64>) -> Self {
        match value {
            Some(value) => self.number(name, value),
            None => self.raw(name, "null"),
        }
    }

    pub fn bool(self, name: &str, value: bool) -> Self {
        self.raw(name, if value { "true" } else { "false" })
    }

    pub fn strings(mut self, name: &str, values: &[String]) -> Self {
        self.key(name);
        self.text.push('[');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            push_string(&mut self.text, value);
        }
        self.text.push(']');
        self
    }

    /// A field whose value is already JSON text (a nested object from another writer).
    pub fn raw(mut self, name: &str, json: &str) -> Self {
        self.key(name);
        self.text.push_str(json);
        self
    }

    pub fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// Appends `value` as a JSON string.
fn push_string(out: &mut String, value: &str) {
    // Writing to a `String` cannot fail.
    let _ = crate::json::write_string(out, value);
}

/// Reads the fields of one parsed JSON object; each error names the field.
pub struct ObjectReader<'a> {
    object: &'a Map<String, Value>,
}

impl<'a> ObjectReader<'a> {
    /// `what` names the object in the error when `value` is not one.
    pub fn new(value: &'a Value, what: &str) -> Result<Self, String> {
        value
            .as_object()
            .map(|object| Self { object })
            .ok_or_else(|| format!("{what}: expected an object"))
    }

    /// A field that is present and not `null`.
    pub fn value(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|value| !value.is_null())
    }

    pub fn str(&self, name: &str) -> Result<String, String> {
        self.opt_str(name)?
            .ok_or_else(|| format!("missing field `{name}`"))
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<String>, String> {
        self.value(name)
            .map(|value| {
                value
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("`{name}`: expected a string"))
            })
            .transpose()
    }

    pub fn opt_u64(&self, name: &str) -> Result<Option<u64>, String> {
        self.value(name)
            .map(|value| {
                value
                    .as_u64()
                    .ok_or_else(|| format!("`{name}`: expected a non-negative integer"))
            })
            .transpose()
    }

    pub fn bool(&self, name: &str) -> Result<bool, String> {
        self.value(name)
            .ok_or_else(|| format!("missing field `{name}`"))?
            .as_bool()
            .ok_or_else(|| format!("`{name}`: expected true or false"))
    }

    /// A nested object, read by `read`; absent or `null` gives `None`.
    pub fn opt_object<T>(
        &self,
        name: &str,
        read: impl FnOnce(ObjectReader<'a>) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        self.value(name)
            .map(|value| read(ObjectReader::new(value, name)?).map_err(|e| format!("{name}.{e}")))
            .transpose()
    }

    pub fn object<T>(
        &self,
        name: &str,
        read: impl FnOnce(ObjectReader<'a>) -> Result<T, String>,
    ) -> Result<T, String> {
        self.opt_object(name, read)?
            .ok_or_else(|| format!("missing field `{name}`"))
    }

    pub fn strings(&self, name: &str) -> Result<Vec<String>, String> {
        let Some(value) = self.value(name) else {
            return Ok(Vec::new());
        };
        value
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| format!("`{name}`: expected a list of strings"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_written_in_call_order_and_escaped() {
        let text = ObjectWriter::new()
            .str("z", "a\"b\\c\n\u{1}é")
            .number("a", 7)
            .bool("m", false)
            .opt_str("absent", None)
            .str_or_null("mid", None)
            .strings("list", &["x".into(), "y".into()])
            .raw("nested", &ObjectWriter::new().finish())
            .finish();
        assert_eq!(
            text,
            r#"{"z":"a\"b\\c\n\u0001é","a":7,"m":false,"mid":null,"list":["x","y"],"nested":{}}"#
        );
        let parsed = crate::json::parse(&text).unwrap();
        assert_eq!(parsed["z"], "a\"b\\c\n\u{1}é");
    }

    #[test]
    fn readers_name_the_field_that_is_wrong() {
        let value: Value =
            crate::json::parse(r#"{"s":1,"n":-1,"b":"yes","o":{"x":2},"l":[1]}"#).unwrap();
        let reader = ObjectReader::new(&value, "message").unwrap();
        assert_eq!(reader.str("s").unwrap_err(), "`s`: expected a string");
        assert_eq!(reader.str("gone").unwrap_err(), "missing field `gone`");
        assert!(reader.opt_u64("n").unwrap_err().contains("`n`"));
        assert!(reader.bool("b").unwrap_err().contains("`b`"));
        assert_eq!(
            reader.object("o", |o| o.str("x")).unwrap_err(),
            "o.`x`: expected a string"
        );
        assert!(reader.strings("l").unwrap_err().contains("`l`"));
        assert_eq!(reader.strings("none").unwrap(), Vec::<String>::new());
        assert!(ObjectReader::new(&Value::Null, "offer").is_err());
    }
}
