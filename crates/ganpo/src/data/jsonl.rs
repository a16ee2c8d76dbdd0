//! Preference records from JSON Lines: one JSON object per line with `prompt` (optional),
//! `chosen`, `rejected`, each a string or a list of `{"role", "content"}` messages.
//!
//! Lines holding only whitespace are skipped (they carry no record); every other line must be a
//! valid record, or reading fails naming `file:line`. Fields other than the three are ignored.

use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

use super::record::{CHOSEN, EXPECTED, Field, PROMPT, REJECTED, Record, preview};
use crate::tokenize::Message;
use crate::{Error, Result};

/// Reads every record of a JSON Lines file.
pub fn read_jsonl(path: &Path) -> Result<Vec<Record>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("opening data file {}", path.display()), e))?;
    let name = path.display().to_string();
    let mut records = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let location = format!("{name}:{}", index + 1);
        let line = line.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => {
                Error::data(&location, "line is not valid UTF-8; save the file as UTF-8")
            }
            _ => Error::io(format!("reading {location}"), e),
        })?;
        // A UTF-8 byte-order mark is not JSON; editors on Windows write one.
        let line = if index == 0 {
            line.strip_prefix('\u{feff}').unwrap_or(&line)
        } else {
            &line
        };
        if line.trim().is_empty() {
            continue;
        }
        records.push(parse_line(line, location)?);
    }
    if records.is_empty() {
        return Err(Error::data(
            name,
            "contains no records; expected one JSON object per line with `prompt`, `chosen` and `rejected`",
        ));
    }
    Ok(records)
}

/// Parses one line into a record located at `location`.
pub(super) fn parse_line(line: &str, location: String) -> Result<Record> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        // serde_json appends "at line 1 column N"; the line is ours, the column is what helps.
        let text = e.to_string();
        let problem = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(p, _)| p);
        Error::data(
            &location,
            format!(
                "invalid JSON at column {}: {problem}; each line must be one JSON object \
                 (JSON Lines; a file holding a single JSON array is not supported)",
                e.column()
            ),
        )
    })?;
    if let Some(key) = super::json_keys::repeated_key(line) {
        return Err(Error::data(
            &location,
            format!(
                "the key `{key}` appears twice in this record (JSON keeps only the last); remove one"
            ),
        ));
    }
    let Value::Object(object) = value else {
        return Err(Error::data(
            &location,
            format!(
                "expected a JSON object with `{PROMPT}`, `{CHOSEN}` and `{REJECTED}`, found {}",
                describe(&value)
            ),
        ));
    };
    let field = |name: &str| -> Result<Option<Field>> {
        object
            .get(name)
            .map(|value| parse_field(value, &location, name))
            .transpose()
    };
    let required = |name: &str| -> Result<Field> {
        field(name)?.ok_or_else(|| {
            Error::data(
                &location,
                format!(
                    "missing field `{name}`; every record needs `{CHOSEN}` and `{REJECTED}` ({EXPECTED}), \
                     and plain-text records a `{PROMPT}`"
                ),
            )
        })
    };
    let prompt = field(PROMPT)?;
    let chosen = required(CHOSEN)?;
    let rejected = required(REJECTED)?;
    Ok(Record {
        location,
        prompt,
        chosen,
        rejected,
    })
}

fn parse_field(value: &Value, location: &str, name: &str) -> Result<Field> {
    let field = match value {
        Value::String(text) => Field::Text(text.clone()),
        Value::Array(items) => Field::Messages(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_message(item, location, &format!("{name}[{i}]")))
                .collect::<Result<_>>()?,
        ),
        other => {
            return Err(Error::data(
                location,
                format!("field `{name}` is {}; expected {EXPECTED}", describe(other)),
            ));
        }
    };
    field.check_not_empty(location, name)?;
    Ok(field)
}

fn parse_message(value: &Value, location: &str, name: &str) -> Result<Message> {
    let Value::Object(object) = value else {
        return Err(Error::data(
            location,
            format!(
                "`{name}` is {}; expected a message object with string fields `role` and `content`",
                describe(value)
            ),
        ));
    };
    let text = |key: &str| -> Result<String> {
        match object.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(Error::data(
                location,
                format!(
                    "`{name}.{key}` is {}; ganpo supports text messages only: `{key}` must be a string",
                    describe(other)
                ),
            )),
            None => Err(Error::data(
                location,
                format!(
                    "`{name}` has no `{key}`; each message needs string fields `role` and `content`"
                ),
            )),
        }
    };
    Ok(Message {
        role: text("role")?,
        content: text("content")?,
    })
}

/// "a number (42)", "null", "an object ({...})": what was found, for error messages.
fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".into(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    format!("{kind} ({})", preview(&value.to_string()))
}
