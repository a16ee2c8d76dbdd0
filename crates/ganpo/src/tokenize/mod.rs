//! Tokenization: a Hugging Face `tokenizers` tokenizer plus the model's special tokens and chat
//! templates, loaded from a model directory (`tokenizer.json`, `tokenizer_config.json`,
//! `chat_template.jinja`, ...) or rebuilt from GGUF metadata. Encoding, decoding and chat-template
//! rendering match transformers 5 (golden tests in tests/chat_templates.rs and tests/tokenizer_bpe.rs).

mod chat;
mod chat_template;
mod hf_config;
mod hf_files;
mod jinja_env;
mod py_json;
mod py_methods;
mod py_values;
mod strftime;

use std::collections::BTreeMap;
use std::path::Path;

pub use chat::Chat;
pub use chat_template::{ChatTemplate, Message};
pub use strftime::CivilDateTime;

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

/// A tokenizer with its special tokens and optional chat templates.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    special: SpecialTokens,
    /// The `default` chat template.
    chat_template: Option<ChatTemplate>,
    /// Other named templates (e.g. `tool_use`, `rag`).
    named_templates: BTreeMap<String, ChatTemplate>,
    add_bos: bool,
    add_eos: bool,
    /// The raw `tokenizer_config.json`, kept so that saving writes back what was loaded.
    config_json: serde_json::Value,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("special", &self.special)
            .field(
                "chat_templates",
                &self
                    .chat_templates()
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>(),
            )
            .field("add_bos_token", &self.add_bos)
            .field("add_eos_token", &self.add_eos)
            .finish()
    }
}

/// Whether the post-processor (what `encode(text, true)` runs) puts BOS before and EOS after the text.
/// It probes with a one-token encoding whose id cannot occur in a vocabulary.
fn probe_special_flags(inner: &tokenizers::Tokenizer, special: &SpecialTokens) -> (bool, bool) {
    const SENTINEL: u32 = u32::MAX;
    let probe = tokenizers::Encoding::from_tokens(
        vec![tokenizers::Token::new(SENTINEL, String::new(), (0, 0))],
        0,
    );
    let Ok(encoding) = inner.post_process(probe, None, true) else {
        return (false, false);
    };
    let ids = encoding.get_ids();
    let Some(at) = ids.iter().position(|&id| id == SENTINEL) else {
        return (false, false);
    };
    let bos = special
        .bos
        .as_ref()
        .is_some_and(|b| at > 0 && ids[0] == b.id);
    let eos = special
        .eos
        .as_ref()
        .is_some_and(|e| at + 1 < ids.len() && ids[ids.len() - 1] == e.id);
    (bos, eos)
}

impl Tokenizer {
    /// Builds a tokenizer from its parts. Padding and truncation configured inside the
    /// `tokenizers` object are switched off (transformers ignores them too unless asked; ganpo pads
    /// and truncates itself), and `split_special_tokens` from the config is honoured.
    pub fn from_parts(
        mut inner: tokenizers::Tokenizer,
        special: SpecialTokens,
        chat_template: Option<ChatTemplate>,
        config_json: serde_json::Value,
    ) -> Self {
        inner.with_padding(None);
        // Only fails for invalid truncation parameters; `None` is always valid.
        let _ = inner.with_truncation(None);
        if let Some(split) = config_json
            .get("split_special_tokens")
            .and_then(|v| v.as_bool())
        {
            inner.set_encode_special_tokens(split);
        }
        let (add_bos, add_eos) = probe_special_flags(&inner, &special);
        Tokenizer {
            inner,
            special,
            chat_template,
            named_templates: BTreeMap::new(),
            add_bos,
            add_eos,
            config_json,
        }
    }

    /// Adds a named chat template; `default` replaces the main one. transformers picks `tool_use`
    /// over `default` when tools are given.
    pub fn with_chat_template(mut self, name: &str, template: ChatTemplate) -> Self {
        if name == "default" {
            self.chat_template = Some(template);
        } else {
            self.named_templates.insert(name.to_owned(), template);
        }
        self
    }

    /// Pins `strftime_now` in every chat template to `time` (see [`ChatTemplate::with_fixed_time`]).
    pub fn with_fixed_template_time(mut self, time: CivilDateTime) -> Result<Self> {
        if let Some(t) = self.chat_template.take() {
            self.chat_template = Some(t.with_fixed_time(time)?);
        }
        for t in self.named_templates.values_mut() {
            *t = t.clone().with_fixed_time(time)?;
        }
        Ok(self)
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
    /// (e.g. Llama's BOS); ganpo's data pipeline calls it with `false` and adds BOS/EOS itself
    /// according to [`Tokenizer::add_bos_token`] / [`Tokenizer::add_eos_token`]. Special tokens
    /// written inside `text` become their ids, as in transformers.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| Error::Tokenizer(format!("cannot encode text: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes token ids into text, without transformers' `clean_up_tokenization_spaces` (off by
    /// default in transformers 5 and never applied to BPE tokenizers).
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

    /// Whether `tokenizer(text)` in transformers (and [`Tokenizer::encode`] with special tokens)
    /// starts with the BOS token. This is what the `tokenizer.json` post-processor does:
    /// transformers 5 drops `add_bos_token` from tokenizer_config.json whenever tokenizer.json
    /// exists (`_from_pretrained`), so the config flag alone does not decide it.
    pub fn add_bos_token(&self) -> bool {
        self.add_bos
    }

    /// Whether `tokenizer(text)` ends with the EOS token (see [`Tokenizer::add_bos_token`]).
    pub fn add_eos_token(&self) -> bool {
        self.add_eos
    }

    /// The `default` chat template, if the model has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// A chat template by name (`default`, `tool_use`, ...).
    pub fn chat_template_named(&self, name: &str) -> Option<&ChatTemplate> {
        match name {
            "default" => self.chat_template.as_ref(),
            _ => self.named_templates.get(name),
        }
    }

    /// Every chat template with its name, `default` first.
    pub fn chat_templates(&self) -> Vec<(&str, &ChatTemplate)> {
        let default = self.chat_template.iter().map(|t| ("default", t));
        let named = self.named_templates.iter().map(|(n, t)| (n.as_str(), t));
        default.chain(named).collect()
    }

    /// Renders `messages` with the model's default chat template; see [`Tokenizer::apply_chat`].
    pub fn apply_chat_template(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String> {
        self.apply_chat(&Chat::from_messages(messages, add_generation_prompt))
    }

    /// Renders a [`Chat`] like transformers' `apply_chat_template(..., tokenize=False)`: with tools
    /// the `tool_use` template if there is one, else the `default` template.
    pub fn apply_chat(&self, chat: &Chat) -> Result<String> {
        let tool_use = chat
            .tools
            .as_ref()
            .and(self.named_templates.get("tool_use"));
        let template = tool_use.or(self.chat_template.as_ref()).ok_or_else(|| {
            if self.named_templates.is_empty() {
                Error::Tokenizer(
                    "this model has no chat template; use plain-text prompts or a model with `chat_template` in tokenizer_config.json".into(),
                )
            } else {
                let names: Vec<&str> = self.named_templates.keys().map(String::as_str).collect();
                Error::Tokenizer(format!(
                    "this model has chat templates named {names:?} but none called `default`; pick one with `chat_template_named`"
                ))
            }
        })?;
        template.render_chat(chat, &self.special)
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
