//! Reading and writing the tokenizer files of a Hugging Face model directory.

use std::path::Path;

use serde_json::Value;

use super::{ChatTemplate, SpecialToken, SpecialTokens, Tokenizer};
use crate::{Error, Result};

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Tokenizer(format!("{} is not valid JSON: {e}", path.display())))
}

/// A special-token entry is either a string or an `AddedToken` object with a `content` field.
fn token_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// `chat_template` is a string, or a list of `{name, template}` of which `default` is used.
fn template_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .or_else(|| items.first())
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

pub(super) fn load(dir: &Path) -> Result<Tokenizer> {
    let tokenizer_path = dir.join("tokenizer.json");
    if !tokenizer_path.exists() {
        return Err(Error::Tokenizer(format!(
            "no tokenizer.json in {}; ganpo needs the fast-tokenizer file (save it with `tokenizer.save_pretrained()`)",
            dir.display()
        )));
    }
    let inner = tokenizers::Tokenizer::from_file(&tokenizer_path)
        .map_err(|e| Error::Tokenizer(format!("cannot load {}: {e}", tokenizer_path.display())))?;
    let config =
        read_json(&dir.join("tokenizer_config.json"))?.unwrap_or(Value::Object(Default::default()));
    let special_map = read_json(&dir.join("special_tokens_map.json"))?.unwrap_or(Value::Null);
    let resolve = |key: &str| -> Result<Option<SpecialToken>> {
        let Some(text) = token_text(config.get(key)).or_else(|| token_text(special_map.get(key)))
        else {
            return Ok(None);
        };
        let id = inner.token_to_id(&text).ok_or_else(|| {
            Error::Tokenizer(format!(
                "{key} `{text}` from tokenizer_config.json is not in the vocabulary of {}",
                tokenizer_path.display()
            ))
        })?;
        Ok(Some(SpecialToken { text, id }))
    };
    let special = SpecialTokens {
        bos: resolve("bos_token")?,
        eos: resolve("eos_token")?,
        pad: resolve("pad_token")?,
        unk: resolve("unk_token")?,
    };
    // transformers ≥ 4.43 may store the template in its own file.
    let jinja_path = dir.join("chat_template.jinja");
    let template_source = if jinja_path.exists() {
        Some(
            std::fs::read_to_string(&jinja_path)
                .map_err(|e| Error::io(format!("reading {}", jinja_path.display()), e))?,
        )
    } else {
        template_text(config.get("chat_template"))
    };
    let chat_template = template_source.map(ChatTemplate::new).transpose()?;
    Ok(Tokenizer::from_parts(inner, special, chat_template, config))
}

pub(super) fn save(tokenizer: &Tokenizer, dir: &Path) -> Result<()> {
    let path = dir.join("tokenizer.json");
    tokenizer
        .inner
        .save(&path, false)
        .map_err(|e| Error::Tokenizer(format!("cannot write {}: {e}", path.display())))?;
    let mut config = match tokenizer.config_json.clone() {
        Value::Object(o) => o,
        _ => Default::default(),
    };
    let special = &tokenizer.special;
    for (key, token) in [
        ("bos_token", &special.bos),
        ("eos_token", &special.eos),
        ("pad_token", &special.pad),
        ("unk_token", &special.unk),
    ] {
        if let Some(t) = token {
            config.insert(key.into(), Value::String(t.text.clone()));
        }
    }
    if let Some(t) = &tokenizer.chat_template {
        config.insert("chat_template".into(), Value::String(t.source().to_owned()));
    }
    config
        .entry("tokenizer_class")
        .or_insert(Value::String("PreTrainedTokenizerFast".into()));
    let path = dir.join("tokenizer_config.json");
    let text = serde_json::to_string_pretty(&Value::Object(config)).expect("JSON values serialize");
    std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}
