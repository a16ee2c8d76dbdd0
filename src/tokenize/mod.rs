//! Tokenization: a Hugging Face `tokenizers` tokenizer plus the model's special tokens and chat
//! template, loaded from a model directory (`tokenizer.json`, `tokenizer_config.json`) or rebuilt
//! from GGUF metadata.

mod chat_template;
mod hf_files;

use std::path::Path;

pub use chat_template::{ChatTemplate, Message};

use crate::{Error, Result};

/// A special token: its text and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialToken {
    /// The token's text, e.g. `<|im_end|>`.
    pub text: String,
    /// Its id in the vocabulary.
    pub id: u32,
}

/// The special tokens a model uses, as `tokenizer_config.json` declares them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning-of-sequence token.
    pub bos: Option<SpecialToken>,
    /// End-of-sequence token.
    pub eos: Option<SpecialToken>,
    /// Padding token.
    pub pad: Option<SpecialToken>,
    /// Unknown token.
    pub unk: Option<SpecialToken>,
}

/// A tokenizer with its special tokens and optional chat template.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    special: SpecialTokens,
    chat_template: Option<ChatTemplate>,
    /// The raw `tokenizer_config.json`, kept so that saving writes back what was loaded.
    config_json: serde_json::Value,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("special", &self.special)
            .field("chat_template", &self.chat_template.is_some())
            .finish()
    }
}

impl Tokenizer {
    /// Builds a tokenizer from its parts. Padding and truncation configured inside the
    /// `tokenizers` object are switched off: ganpo pads and truncates itself.
    pub fn from_parts(
        mut inner: tokenizers::Tokenizer,
        special: SpecialTokens,
        chat_template: Option<ChatTemplate>,
        config_json: serde_json::Value,
    ) -> Self {
        inner.with_padding(None);
        // Only fails for invalid truncation parameters; `None` is always valid.
        let _ = inner.with_truncation(None);
        Tokenizer {
            inner,
            special,
            chat_template,
            config_json,
        }
    }

    /// Loads `tokenizer.json`, `tokenizer_config.json` (special tokens, `chat_template`) and a
    /// separate `chat_template.jinja` if present, from a Hugging Face model directory.
    pub fn from_hf_dir(dir: &Path) -> Result<Self> {
        hf_files::load(dir)
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` (with the chat template) into `dir`.
    pub fn save_hf(&self, dir: &Path) -> Result<()> {
        hf_files::save(self, dir)
    }

    /// Encodes text into token ids. With `add_special_tokens` the tokenizer's post-processor runs
    /// (e.g. Llama's BOS); ganpo's data pipeline calls it with `false` and adds BOS/EOS itself.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| Error::Tokenizer(format!("cannot encode text: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes token ids into text.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| Error::Tokenizer(format!("cannot decode ids: {e}")))
    }

    /// The text of one token id, if it exists.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of a token's text, if it exists.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The special tokens.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    /// The id used for padding: the pad token, else EOS (as TRL does), else 0.
    pub fn pad_id(&self) -> u32 {
        self.special
            .pad
            .as_ref()
            .or(self.special.eos.as_ref())
            .map(|t| t.id)
            .unwrap_or(0)
    }

    /// The chat template, if the model has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// Renders `messages` with the model's chat template, passing `bos_token` and `eos_token`.
    pub fn apply_chat_template(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self.chat_template.as_ref().ok_or_else(|| {
            Error::Tokenizer(
                "this model has no chat template; use plain-text prompts or a model with `chat_template` in tokenizer_config.json".into(),
            )
        })?;
        template.render(messages, add_generation_prompt, &self.special)
    }

    /// The underlying `tokenizers` object.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// The raw `tokenizer_config.json` this tokenizer was loaded with (or built for it).
    pub fn config_json(&self) -> &serde_json::Value {
        &self.config_json
    }
}
