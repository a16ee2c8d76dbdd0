//! Python string semantics that minijinja-contrib's `pycompat` gets slightly wrong for chat templates:
//! `str.strip()`, `str.split()` and Jinja2's `trim` filter use Python's notion of whitespace, which also
//! covers the ASCII separators U+001C–U+001F that Rust's `char::is_whitespace` leaves alone. Every other
//! method goes to `pycompat`.

use minijinja::value::{Value, ValueKind, from_args};
use minijinja::{Error, State};

use super::py_values::py_str;

/// Python's `str.isspace()` for one character.
pub(super) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn strip<'a>(s: &'a str, chars: Option<&str>, left: bool, right: bool) -> &'a str {
    let strip_char = |c: char| match chars {
        Some(set) => set.contains(c),
        None => is_py_space(c),
    };
    let s = if left {
        s.trim_start_matches(strip_char)
    } else {
        s
    };
    if right {
        s.trim_end_matches(strip_char)
    } else {
        s
    }
}

/// Python's `str.split(sep=None, maxsplit=-1)` without a separator: runs of whitespace split, and
/// leading or trailing whitespace yields no empty strings.
fn split_whitespace(s: &str, maxsplit: Option<i64>) -> Vec<Value> {
    let mut parts = Vec::new();
    let mut rest = s.trim_start_matches(is_py_space);
    let limit = maxsplit.filter(|&n| n >= 0).map(|n| n as usize);
    while !rest.is_empty() {
        if limit.is_some_and(|n| parts.len() == n) {
            parts.push(Value::from(rest));
            break;
        }
        let end = rest.find(is_py_space).unwrap_or(rest.len());
        parts.push(Value::from(&rest[..end]));
        rest = rest[end..].trim_start_matches(is_py_space);
    }
    parts
}

/// The unknown-method callback: Python's whitespace for `strip`/`lstrip`/`rstrip`/`split()`, then
/// `pycompat` for everything else.
pub(super) fn unknown_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if let (ValueKind::String, Some(s)) = (value.kind(), value.as_str()) {
        match method {
            "strip" | "lstrip" | "rstrip" => {
                let (chars,): (Option<Value>,) = from_args(args)?;
                let chars = chars.filter(|c| !c.is_none());
                let set = chars.as_ref().and_then(|c| c.as_str());
                let (left, right) = (method != "rstrip", method != "lstrip");
                return Ok(Value::from(strip(s, set, left, right)));
            }
            "split" => {
                let (sep, maxsplit): (Option<Value>, Option<i64>) = from_args(args)?;
                if sep.as_ref().is_none_or(|v| v.is_none()) {
                    return Ok(Value::from(split_whitespace(s, maxsplit)));
                }
            }
            _ => {}
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Jinja2's `trim(value, chars=None)`: `str(value).strip(chars)`.
pub(super) fn trim_filter(value: &Value, chars: Option<String>) -> Value {
    let text = py_str(value);
    Value::from(strip(&text, chars.as_deref(), true, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_ascii_separators() {
        assert_eq!(
            strip("\u{1c}\u{1f} pad \u{1e}\u{3000}", None, true, true),
            "pad"
        );
        assert_eq!(strip("xxhixx", Some("x"), true, false), "hixx");
        let words: Vec<String> = split_whitespace(" a \u{1f} b  c ", Some(1))
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(words, ["a", "b  c "]);
    }
}
