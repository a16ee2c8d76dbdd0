//! Tokenizing a rendered example as TRL's legacy `DPOTrainer.tokenize_row` does (trl 0.23.1,
//! `trl/trainer/dpo_trainer.py`, called by `_prepare_dataset` with `add_special_tokens=False` for
//! decoder-only models).

use super::config::DataConfig;
use super::conversation::RenderedExample;
use crate::tokenize::Tokenizer;
use crate::{Error, Result};

/// The token ids of one example before `prompt + completion` concatenation, as TRL's
/// `tokenize_row` returns them, plus which per-part limits cut something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedRow {
    /// Prompt ids, at most `max_prompt_length` (its last tokens).
    pub prompt_input_ids: Vec<u32>,
    /// Chosen ids with EOS appended, at most `max_completion_length` (its first tokens).
    pub chosen_input_ids: Vec<u32>,
    /// Rejected ids with EOS appended, at most `max_completion_length` (its first tokens).
    pub rejected_input_ids: Vec<u32>,
    /// Whether `max_prompt_length` removed prompt tokens.
    pub prompt_truncated: bool,
    /// Whether `max_completion_length` removed tokens from either completion.
    pub completion_truncated: bool,
}

/// Tokenizes `rendered` as TRL's `tokenize_row`:
///
/// - prompt, chosen and rejected are encoded separately with `add_special_tokens=False`, so no BOS
///   is added (a chat template that writes `bos_token` puts it into the prompt text instead);
/// - EOS is appended to both completions (also for conversations, whose template may already end
///   the turn: TRL did so up to 0.27.1);
/// - the prompt keeps its last `max_prompt_length` tokens, each completion its first
///   `max_completion_length` tokens.
///
/// Fails if the tokenizer has no EOS token.
pub fn tokenize_row(
    rendered: &RenderedExample,
    tokenizer: &Tokenizer,
    config: &DataConfig,
) -> Result<TokenizedRow> {
    let eos = tokenizer.special_tokens().eos.as_ref().ok_or_else(|| {
        Error::Tokenizer(
            "the tokenizer has no eos_token, which DPO appends to every completion; set `eos_token` in \
             tokenizer_config.json"
                .into(),
        )
    })?;
    let mut prompt = tokenizer.encode(&rendered.prompt, false)?;
    let mut chosen = tokenizer.encode(&rendered.chosen, false)?;
    let mut rejected = tokenizer.encode(&rendered.rejected, false)?;
    chosen.push(eos.id);
    rejected.push(eos.id);

    let mut prompt_truncated = false;
    if let Some(max) = config.max_prompt_length
        && prompt.len() > max
    {
        prompt.drain(..prompt.len() - max);
        prompt_truncated = true;
    }
    let mut completion_truncated = false;
    if let Some(max) = config.max_completion_length {
        for ids in [&mut chosen, &mut rejected] {
            if ids.len() > max {
                ids.truncate(max);
                completion_truncated = true;
            }
        }
    }
    Ok(TokenizedRow {
        prompt_input_ids: prompt,
        chosen_input_ids: chosen,
        rejected_input_ids: rejected,
        prompt_truncated,
        completion_truncated,
    })
}
