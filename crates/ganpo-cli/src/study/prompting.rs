//! How a corpus prefix becomes model input, in either format, and how a prompt and its sampled
//! continuations become a preference record that `ganpo train` renders the same way again.

use ganpo::tokenize::{Message, Tokenizer};
use ganpo::{Error, Result};
use serde::Serialize;

use super::config::{CHAT_INSTRUCTION, PromptFormat, StudyConfig};
use super::corpus::{Prompt, Split, prompts, read_corpus};

/// The text the model is prompted with (the chat template applied for [`PromptFormat::Chat`]).
pub fn prompt_text(tokenizer: &Tokenizer, format: PromptFormat, prefix: &str) -> Result<String> {
    match format {
        PromptFormat::Plain => Ok(prefix.to_string()),
        PromptFormat::Chat => tokenizer.apply_chat_template(&user_message(prefix), true),
    }
}

/// The prompt's token ids, encoded without special tokens as the trainer encodes prompts.
pub fn prompt_ids(tokenizer: &Tokenizer, format: PromptFormat, prefix: &str) -> Result<Vec<u32>> {
    tokenizer.encode(&prompt_text(tokenizer, format, prefix)?, false)
}

fn user_message(prefix: &str) -> Vec<Message> {
    vec![Message::new("user", format!("{CHAT_INSTRUCTION} {prefix}"))]
}

/// A field of a preference record: plain text, or chat messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RecordField {
    /// Plain text.
    Text(String),
    /// Chat messages.
    Messages(Vec<Message>),
}

/// One preference record as `ganpo train` reads it, with the scores that ranked it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairRecord {
    /// The prefix (plain) or the user's request (chat).
    pub prompt: RecordField,
    /// The continuation with the higher VADER compound.
    pub chosen: RecordField,
    /// The continuation with the lower VADER compound.
    pub rejected: RecordField,
    /// VADER compound of `chosen`.
    pub score_chosen: f64,
    /// VADER compound of `rejected`.
    pub score_rejected: f64,
    /// The corpus file of the prompt.
    pub source_file: String,
}

/// The record of `prefix` with `chosen` preferred over `rejected`.
pub fn pair_record(
    format: PromptFormat,
    prefix: &str,
    chosen: (&str, f64),
    rejected: (&str, f64),
    source_file: &str,
) -> PairRecord {
    let (prompt, c, r) = match format {
        PromptFormat::Plain => (
            RecordField::Text(prefix.to_string()),
            RecordField::Text(chosen.0.to_string()),
            RecordField::Text(rejected.0.to_string()),
        ),
        PromptFormat::Chat => (
            RecordField::Messages(user_message(prefix)),
            RecordField::Messages(vec![Message::new("assistant", chosen.0)]),
            RecordField::Messages(vec![Message::new("assistant", rejected.0)]),
        ),
    };
    PairRecord {
        prompt,
        chosen: c,
        rejected: r,
        score_chosen: chosen.1,
        score_rejected: rejected.1,
        source_file: source_file.to_string(),
    }
}

/// One split's prompts and their token ids.
pub type SplitPrompts = (Vec<Prompt>, Vec<Vec<u32>>);

/// Every split's prompts with their ids, dropping those over `max_prompt_tokens`.
pub fn split_prompts(
    config: &StudyConfig,
    tokenizer: &Tokenizer,
) -> Result<(Vec<SplitPrompts>, usize)> {
    let sentences = read_corpus(&config.corpus)?;
    let want = |s: Split| match s {
        Split::Train => config.train_prompts,
        Split::Validation => config.validation_prompts,
        Split::HeldOut => config.eval_prompts,
    };
    // Draw twice as many as needed, so that dropping long prompts still leaves enough.
    let drawn = prompts(&sentences, config.data_seed, |s| 2 * want(s));
    let mut long = 0;
    let mut out = Vec::new();
    for (split, candidates) in drawn {
        let (mut kept, mut ids) = (Vec::new(), Vec::new());
        for p in candidates {
            if kept.len() == want(split) {
                break;
            }
            let encoded = prompt_ids(tokenizer, config.prompt_format, &p.text)?;
            if encoded.len() > config.max_prompt_tokens || encoded.is_empty() {
                long += 1;
                continue;
            }
            kept.push(p);
            ids.push(encoded);
        }
        if kept.len() < want(split) {
            return Err(Error::Config(format!(
                "the corpus in {} gave only {} {split:?} prompts of ≤ {} tokens, {} wanted; lower the prompt count or raise --max-prompt-tokens",
                config.corpus.display(),
                kept.len(),
                config.max_prompt_tokens,
                want(split)
            )));
        }
        out.push((kept, ids));
    }
    Ok((out, long))
}
