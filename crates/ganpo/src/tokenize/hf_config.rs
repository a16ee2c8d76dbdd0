//! What transformers 5 reads from a tokenizer directory besides `tokenizer.json`: special tokens from
//! `tokenizer_config.json` (strings or `AddedToken` objects) with `special_tokens_map.json` as the legacy
//! fallback, and chat templates from `chat_template.jinja`, `additional_chat_templates/*.jinja` or the
//! config's `chat_template` (a string or a list of named templates).
//! Source: `PreTrainedTokenizerBase._from_pretrained` in transformers/tokenization_utils_base.py.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::ChatTemplate;
use crate::{Error, Result};

/// The special-token keys ganpo resolves, in `SpecialTokens` order.
pub(super) const SPECIAL_KEYS: [&str; 4] = ["bos_token", "eos_token", "pad_token", "unk_token"];

/// Reads and parses a JSON file, `None` if it does not exist.
pub(super) fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Tokenizer(format!("{} is not valid JSON: {e}", path.display())))
}

/// A special-token entry: a string, an `AddedToken` object with a `content` field, or `null`.
fn token_text(value: &Value, key: &str, file: &Path) -> Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Object(o) => match o.get("content") {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(Error::Tokenizer(format!(
                "{}: `{key}` is an object without a string `content` field: {value}",
                file.display()
            ))),
        },
        _ => Err(Error::Tokenizer(format!(
            "{}: `{key}` must be a string, an AddedToken object or null, got {value}",
            file.display()
        ))),
    }
}

/// The text of each special token and the file it came from. Like transformers, a config without
/// `added_tokens_decoder` (the legacy layout) lets `special_tokens_map.json` override its entries;
/// otherwise `special_tokens_map.json` is not read.
pub(super) fn special_token_texts(
    dir: &Path,
    config: &Value,
) -> Result<BTreeMap<&'static str, (String, String)>> {
    let config_path = dir.join("tokenizer_config.json");
    let mut texts = BTreeMap::new();
    for key in SPECIAL_KEYS {
        if let Some(value) = config.get(key)
            && let Some(text) = token_text(value, key, &config_path)?
        {
            texts.insert(key, (text, "tokenizer_config.json".to_owned()));
        }
    }
    if config.get("added_tokens_decoder").is_none() {
        let map_path = dir.join("special_tokens_map.json");
        if let Some(map) = read_json(&map_path)? {
            for key in SPECIAL_KEYS {
                if let Some(value) = map.get(key)
                    && let Some(text) = token_text(value, key, &map_path)?
                {
                    texts.insert(key, (text, "special_tokens_map.json".to_owned()));
                }
            }
        }
    }
    Ok(texts)
}

fn compile(source: String, origin: &str) -> Result<ChatTemplate> {
    ChatTemplate::new(source).map_err(|e| Error::Tokenizer(format!("{origin}: {e}")))
}

fn read_template(path: &Path) -> Result<ChatTemplate> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    compile(source, &path.display().to_string())
}

/// `chat_template` in tokenizer_config.json: a string, or a list of `{"name", "template"}`.
fn config_templates(config: &Value, path: &Path) -> Result<BTreeMap<String, ChatTemplate>> {
    let mut templates = BTreeMap::new();
    match config.get("chat_template") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            let origin = format!("chat_template in {}", path.display());
            templates.insert("default".to_owned(), compile(s.clone(), &origin)?);
        }
        Some(Value::Array(items)) => {
            for item in items {
                let (Some(Value::String(name)), Some(Value::String(source))) =
                    (item.get("name"), item.get("template"))
                else {
                    return Err(Error::Tokenizer(format!(
                        "{}: each entry of the `chat_template` list needs string `name` and `template` fields, got {item}",
                        path.display()
                    )));
                };
                let origin = format!("chat template `{name}` in {}", path.display());
                templates.insert(name.clone(), compile(source.clone(), &origin)?);
            }
        }
        Some(other) => {
            return Err(Error::Tokenizer(format!(
                "{}: `chat_template` must be a string or a list of {{name, template}} objects, got {}",
                path.display(),
                json_kind(other)
            )));
        }
    }
    Ok(templates)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// All chat templates by name (`default` for the main one). Template files, when present, replace
/// the config's entries entirely, as in transformers.
pub(super) fn chat_templates(dir: &Path, config: &Value) -> Result<BTreeMap<String, ChatTemplate>> {
    let mut templates = BTreeMap::new();
    let default_file = dir.join("chat_template.jinja");
    if default_file.exists() {
        templates.insert("default".to_owned(), read_template(&default_file)?);
    }
    let extra_dir = dir.join("additional_chat_templates");
    if extra_dir.is_dir() {
        let entries = std::fs::read_dir(&extra_dir)
            .map_err(|e| Error::io(format!("listing {}", extra_dir.display()), e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| Error::io(format!("listing {}", extra_dir.display()), e))?
                .path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if let Some(name) = name.strip_suffix(".jinja") {
                templates.insert(name.to_owned(), read_template(&path)?);
            }
        }
    }
    if templates.is_empty() {
        templates = config_templates(config, &dir.join("tokenizer_config.json"))?;
    }
    Ok(templates)
}
