//! The `tojson` filter as transformers defines it for chat templates: Python's
//! `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`, not Jinja2's
//! HTML-escaping filter. Tool schemas are printed with it, so its spacing (`", "`, `": "`), key order,
//! float spelling and escapes end up in the tokens.

use std::fmt::Write;

use minijinja::value::{Kwargs, Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Error, ErrorKind};

use super::py_values::float_repr;

/// `json.dumps` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JsonOptions {
    /// Escape every non-ASCII character as `\uXXXX`.
    pub ensure_ascii: bool,
    /// Pretty-print with this indent string per level (`indent=4` is four spaces).
    pub indent: Option<String>,
    /// Between items; Python's default is `", "`, or `","` when indenting.
    pub item_separator: String,
    /// Between a key and its value.
    pub key_separator: String,
    /// Sort object keys.
    pub sort_keys: bool,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            ensure_ascii: false,
            indent: None,
            item_separator: ", ".into(),
            key_separator: ": ".into(),
            sort_keys: false,
        }
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

fn write_string(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && !(' '..='~').contains(&c)) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_number(value: &Value, out: &mut String) {
    if value.is_integer() {
        match i128::try_from(value.clone()) {
            Ok(i) => out.push_str(&i.to_string()),
            Err(_) => out.push_str(&value.to_string()),
        }
        return;
    }
    match f64::try_from(value.clone()) {
        Ok(f) if f.is_nan() => out.push_str("NaN"),
        Ok(f) if f.is_infinite() => out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" }),
        Ok(f) => out.push_str(&float_repr(f)),
        Err(_) => out.push_str(&value.to_string()),
    }
}

/// A dict key as `json.dumps` converts it: strings as they are, `True` → `true`, numbers printed.
fn key_text(key: &Value) -> Result<String, Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or_default().to_owned()),
        ValueKind::Bool => Ok(if key.is_true() { "true" } else { "false" }.into()),
        ValueKind::None => Ok("null".into()),
        ValueKind::Number => {
            let mut s = String::new();
            write_number(key, &mut s);
            Ok(s)
        }
        kind => Err(invalid(format!(
            "tojson: keys must be str, int, float, bool or None, not {kind}"
        ))),
    }
}

fn newline(options: &JsonOptions, level: usize, out: &mut String) {
    if let Some(indent) = &options.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(indent);
        }
    }
}

fn write_value(
    value: &Value,
    options: &JsonOptions,
    level: usize,
    out: &mut String,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => write_number(value, out),
        ValueKind::String => write_string(
            value.as_str().unwrap_or_default(),
            options.ensure_ascii,
            out,
        ),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&options.item_separator);
                }
                newline(options, level + 1, out);
                write_value(item, options, level + 1, out)?;
            }
            newline(options, level, out);
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = value.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if options.sort_keys {
                keys.sort();
            }
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(&options.item_separator);
                }
                newline(options, level + 1, out);
                write_string(&key_text(key)?, options.ensure_ascii, out);
                out.push_str(&options.key_separator);
                write_value(&value.get_item(key)?, options, level + 1, out)?;
            }
            newline(options, level, out);
            out.push('}');
        }
        kind => {
            return Err(invalid(format!(
                "tojson: object of type {kind} is not JSON serializable"
            )));
        }
    }
    Ok(())
}

/// `json.dumps(value, **options)`.
pub(super) fn dumps(value: &Value, options: &JsonOptions) -> Result<String, Error> {
    let mut out = String::new();
    write_value(value, options, 0, &mut out)?;
    Ok(out)
}

/// Python's `indent` argument: an int (that many spaces, none below 1) or a string.
fn indent_arg(value: &Value) -> Result<Option<String>, Error> {
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => Ok(None),
        ValueKind::String => Ok(Some(value.as_str().unwrap_or_default().to_owned())),
        ValueKind::Number if value.is_integer() => {
            let n = i64::try_from(value.clone())?;
            Ok(Some(" ".repeat(n.max(0) as usize)))
        }
        kind => Err(invalid(format!(
            "tojson: indent must be an int or a string, not {kind}"
        ))),
    }
}

/// The `tojson` filter: `tojson(ensure_ascii=False, indent=None, separators=None, sort_keys=False)`,
/// positionally or by keyword.
pub(super) fn tojson_filter(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAMES: [&str; 4] = ["ensure_ascii", "indent", "separators", "sort_keys"];
    let mut positional: Vec<Value> = args.0.into_iter().map(Value::from).collect();
    let kwargs = match positional.last() {
        Some(last) if last.is_kwargs() => {
            Some(Kwargs::try_from(positional.pop().unwrap_or_default())?)
        }
        _ => None,
    };
    if positional.len() > NAMES.len() {
        return Err(invalid(format!(
            "tojson takes at most {} arguments, got {}",
            NAMES.len(),
            positional.len()
        )));
    }
    let mut given: [Option<Value>; 4] = Default::default();
    for (slot, value) in given.iter_mut().zip(positional) {
        *slot = Some(value);
    }
    if let Some(kwargs) = &kwargs {
        for (i, name) in NAMES.iter().enumerate() {
            if let Some(v) = kwargs.get::<Option<Value>>(name)? {
                if given[i].is_some() {
                    return Err(invalid(format!("tojson got multiple values for `{name}`")));
                }
                given[i] = Some(v);
            }
        }
        kwargs.assert_all_used()?;
    }
    let [ensure_ascii, indent, separators, sort_keys] = given;
    let mut options = JsonOptions {
        ensure_ascii: ensure_ascii.is_some_and(|v| v.is_true()),
        indent: indent.as_ref().map(indent_arg).transpose()?.flatten(),
        sort_keys: sort_keys.is_some_and(|v| v.is_true()),
        ..JsonOptions::default()
    };
    if options.indent.is_some() {
        options.item_separator = ",".into();
    }
    if let Some(separators) = separators.filter(|s| !s.is_none()) {
        let parts: Vec<Value> = separators.try_iter()?.collect();
        match parts.as_slice() {
            [item, key] if item.as_str().is_some() && key.as_str().is_some() => {
                options.item_separator = item.as_str().unwrap_or_default().to_owned();
                options.key_separator = key.as_str().unwrap_or_default().to_owned();
            }
            _ => {
                return Err(invalid(
                    "tojson: separators must be an (item_separator, key_separator) pair of strings"
                        .into(),
                ));
            }
        }
    }
    dumps(value, &options).map(Value::from)
}
