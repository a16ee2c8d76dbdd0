//! A preference record as read from a file (JSONL or Parquet), before its prompt is resolved.

use std::path::Path;

use crate::tokenize::Message;
use crate::{Error, Result};

/// Column / field holding the prompt (optional for conversational data).
pub const PROMPT: &str = "prompt";
/// Column / field holding the preferred completion.
pub const CHOSEN: &str = "chosen";
/// Column / field holding the dispreferred completion.
pub const REJECTED: &str = "rejected";

/// What the expected field types are, for error messages.
pub(super) const EXPECTED: &str =
    "a non-empty string, or a non-empty list of {\"role\": ..., \"content\": ...} messages";

/// One text field of a record: plain text, or a conversation in Hugging Face's chat format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// Plain text, used as is (no chat template).
    Text(String),
    /// Chat messages, rendered with the tokenizer's chat template.
    Messages(Vec<Message>),
}

impl Field {
    /// Rejects an empty string or an empty message list, naming `location` and the field `name`.
    pub(super) fn check_not_empty(&self, location: &str, name: &str) -> Result<()> {
        let empty = match self {
            Field::Text(text) => text.is_empty().then_some("an empty string"),
            Field::Messages(messages) => messages.is_empty().then_some("an empty list of messages"),
        };
        match empty {
            Some(what) => Err(Error::data(
                location,
                format!("field `{name}` is {what}; expected {EXPECTED}. Fix or remove this record"),
            )),
            None => Ok(()),
        }
    }

    /// `"text"` or `"messages"`, for error messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Field::Text(_) => "a string",
            Field::Messages(_) => "a list of messages",
        }
    }
}

/// A preference record as read from a file: `prompt` (optional), `chosen`, `rejected`. Other
/// columns of the file are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where the record is: `file:line` (JSONL, 1-based) or `file:row N` (Parquet, 0-based as in
    /// `datasets` / `pyarrow`).
    pub location: String,
    /// The prompt; may be absent when `chosen` and `rejected` are conversations that contain it.
    pub prompt: Option<Field>,
    /// The preferred completion (or conversation).
    pub chosen: Field,
    /// The dispreferred completion (or conversation).
    pub rejected: Field,
}

/// Reads every record of a JSON Lines file (`.jsonl`, or `.json` as `datasets`' `to_json` writes
/// it) or a Parquet file (`.parquet`), chosen by extension. Fails on the first bad record with its
/// location; an empty file is an error.
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("jsonl") | Some("json") => super::jsonl::read_jsonl(path),
        Some("parquet") => super::parquet::read_parquet(path),
        _ => Err(Error::data(
            path.display().to_string(),
            "unknown data file type; use JSON Lines (`.jsonl`, one record per line) or Parquet (`.parquet`)",
        )),
    }
}

/// Shortens a value shown in an error message.
pub(super) fn preview(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
