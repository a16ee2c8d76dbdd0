//! Reading and writing the tokenizer files of a Hugging Face model directory.

use std::path::Path;

use serde_json::Value;

use super::hf_config::{SPECIAL_KEYS, chat_templates, read_json, special_token_texts};
use super::{SpecialToken, SpecialTokens, Tokenizer};
use crate::{Error, Result};

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
    let config_path = dir.join("tokenizer_config.json");
    let config = read_json(&config_path)?.unwrap_or(Value::Object(Default::default()));
    if !config.is_object() {
        return Err(Error::Tokenizer(format!(
            "{} must hold a JSON object",
            config_path.display()
        )));
    }
    let texts = special_token_texts(dir, &config)?;
    let resolve = |key: &str| -> Result<Option<SpecialToken>> {
        let Some((text, file)) = texts.get(key) else {
            return Ok(None);
        };
        let id = inner.token_to_id(text).ok_or_else(|| {
            Error::Tokenizer(format!(
                "{key} `{text}` from {} is not in the vocabulary of {}",
                dir.join(file).display(),
                tokenizer_path.display()
            ))
        })?;
        Ok(Some(SpecialToken {
            text: text.clone(),
            id,
        }))
    };
    let [bos, eos, pad, unk] = SPECIAL_KEYS.map(resolve);
    let special = SpecialTokens {
        bos: bos?,
        eos: eos?,
        pad: pad?,
        unk: unk?,
    };
    let mut templates = chat_templates(dir, &config)?;
    let default = templates.remove("default");
    let mut tokenizer = Tokenizer::from_parts(inner, special, default, config);
    for (name, template) in templates {
        tokenizer = tokenizer.with_chat_template(&name, template);
    }
    Ok(tokenizer)
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
    for (key, token) in
        SPECIAL_KEYS
            .iter()
            .zip([&special.bos, &special.eos, &special.pad, &special.unk])
    {
        if let Some(t) = token {
            config.insert((*key).into(), Value::String(t.text.clone()));
        }
    }
    // One template is saved as a string; several as transformers' list of named templates.
    let named = tokenizer.chat_templates();
    match named.as_slice() {
        [] => {}
        [("default", t)] => {
            config.insert("chat_template".into(), Value::String(t.source().to_owned()));
        }
        all => {
            let list = all
                .iter()
                .map(|(name, t)| serde_json::json!({"name": name, "template": t.source()}))
                .collect();
            config.insert("chat_template".into(), Value::Array(list));
        }
    }
    config
        .entry("tokenizer_class")
        .or_insert(Value::String("PreTrainedTokenizerFast".into()));
    let path = dir.join("tokenizer_config.json");
    let text = serde_json::to_string_pretty(&Value::Object(config))
        .map_err(|e| Error::Tokenizer(format!("cannot serialize {}: {e}", path.display())))?;
    std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}
