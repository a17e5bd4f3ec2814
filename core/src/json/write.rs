//! JSON text from a [`Value`]: compact through `Display` (`value.to_string()`), indented
//! through [`Value::to_pretty_string`]; the same text `serde_json` writes for the value.

use std::fmt::{self, Write};

use super::value::{Number, Value};

impl fmt::Display for Value {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_value(out, self, None, 0)
    }
}

impl Value {
    /// The value over several lines, nested fields indented by two spaces (files people
    /// may read, such as the pins file).
    pub fn to_pretty_string(&self) -> String {
        let mut text = String::new();
        let _ = write_value(&mut text, self, Some("  "), 0);
        text
    }
}

/// Appends `text` as a JSON string: quotes, backslashes and control characters escaped,
/// everything else (all of Unicode) as it is.
pub fn write_string(out: &mut impl Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    let mut plain = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.write_str(&text[plain..at])?;
        plain = at + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.write_str("\\u00")?;
            out.write_char(HEX[usize::from(byte >> 4)] as char)?;
            out.write_char(HEX[usize::from(byte & 0xf)] as char)?;
        } else {
            out.write_str(escape)?;
        }
    }
    out.write_str(&text[plain..])?;
    out.write_char('"')
}

fn write_number(out: &mut impl Write, number: Number) -> fmt::Result {
    match number {
        Number::Unsigned(value) => write!(out, "{value}"),
        Number::Negative(value) => write!(out, "{value}"),
        // JSON has no infinities or NaN.
        Number::Float(value) if !value.is_finite() => out.write_str("null"),
        // The shortest digits that read back as the same number; ".0" or an exponent keeps
        // it a float, and very large or small ones take an exponent rather than many zeros.
        Number::Float(value) if value.abs() >= 1e16 || (value != 0.0 && value.abs() < 1e-5) => {
            write!(out, "{value:e}")
        }
        Number::Float(value) if value.fract() == 0.0 => write!(out, "{value:.1}"),
        Number::Float(value) => write!(out, "{value}"),
    }
}

/// Writes `value`; `indent` is `None` for compact text, else the indent of one level.
fn write_value(
    out: &mut impl Write,
    value: &Value,
    indent: Option<&str>,
    depth: usize,
) -> fmt::Result {
    match value {
        Value::Null => out.write_str("null"),
        Value::Bool(value) => out.write_str(if *value { "true" } else { "false" }),
        Value::Number(number) => write_number(out, *number),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            write_list(out, '[', ']', items.iter(), indent, depth, |out, item| {
                write_value(out, item, indent, depth + 1)
            })
        }
        Value::Object(fields) => write_list(
            out,
            '{',
            '}',
            fields.iter(),
            indent,
            depth,
            |out, (key, item)| {
                write_string(out, key)?;
                out.write_str(if indent.is_some() { ": " } else { ":" })?;
                write_value(out, item, indent, depth + 1)
            },
        ),
    }
}

/// The brackets and separators around a list's items, one item per line when indented.
fn write_list<W: Write, T>(
    out: &mut W,
    open: char,
    close: char,
    items: impl ExactSizeIterator<Item = T>,
    indent: Option<&str>,
    depth: usize,
    mut write_item: impl FnMut(&mut W, T) -> fmt::Result,
) -> fmt::Result {
    out.write_char(open)?;
    let empty = items.len() == 0;
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.write_char(',')?;
        }
        if let Some(indent) = indent {
            out.write_char('\n')?;
            for _ in 0..=depth {
                out.write_str(indent)?;
            }
        }
        write_item(out, item)?;
    }
    if let (Some(indent), false) = (indent, empty) {
        out.write_char('\n')?;
        for _ in 0..depth {
            out.write_str(indent)?;
        }
    }
    out.write_char(close)
}
