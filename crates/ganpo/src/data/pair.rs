//! `prompt + completion` sequences of a pair, cut to `max_length` as TRL's
//! `DPOTrainer.concatenated_forward` does, and the pairs that cannot be cut usefully.

use serde::Serialize;

use super::config::{DataConfig, TruncationMode};
use super::tokenize_row::TokenizedRow;

/// One `prompt + completion` token sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// Prompt then completion ids, without padding.
    pub input_ids: Vec<u32>,
    /// How many leading ids are prompt; the rest is completion (the loss is taken there).
    pub prompt_len: usize,
}

impl Sequence {
    /// Number of completion tokens.
    pub fn completion_len(&self) -> usize {
        self.input_ids.len() - self.prompt_len
    }
}

/// A tokenized preference pair, ready to batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedPair {
    /// Where the record came from (`file:line` or `file:row N`).
    pub location: String,
    /// Prompt + chosen completion.
    pub chosen: Sequence,
    /// Prompt + rejected completion.
    pub rejected: Sequence,
}

/// Why a pair was dropped instead of trained on. TRL keeps such pairs; their loss is then
/// meaningless (a completion without tokens has log-prob 0; a completion without its prompt is
/// scored unconditioned, and TRL's label shift wraps its first token around).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The prompt text encodes to no tokens.
    EmptyPrompt,
    /// `keep_end` truncation to `max_length` removed the whole prompt of a sequence (its
    /// completion alone is at least `max_length` tokens).
    PromptTruncatedAway,
    /// `keep_start` truncation to `max_length` removed the whole completion of a sequence (the
    /// prompt alone is at least `max_length` tokens).
    CompletionTruncatedAway,
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DropReason::EmptyPrompt => "the prompt has no tokens",
            DropReason::PromptTruncatedAway => {
                "keep_end truncation to max_length removed the whole prompt (lower max_completion_length or raise max_length)"
            }
            DropReason::CompletionTruncatedAway => {
                "keep_start truncation to max_length removed the whole completion (lower max_prompt_length or raise max_length)"
            }
        })
    }
}

/// Concatenates `prompt + chosen` and `prompt + rejected` and cuts each sequence longer than
/// `max_length` independently, as TRL's `concatenated_forward` does after flushing its padded batch
/// (trl 0.23.1, `trl/trainer/dpo_trainer.py`): `keep_start` keeps the first `max_length` tokens,
/// `keep_end` the last. Its flush/roll on the padded batch acts row by row, so the result does not
/// depend on the other rows of the batch. Returns the reason instead when the pair cannot be used.
pub fn concatenate(
    row: &TokenizedRow,
    config: &DataConfig,
) -> std::result::Result<(Sequence, Sequence), DropReason> {
    if row.prompt_input_ids.is_empty() {
        return Err(DropReason::EmptyPrompt);
    }
    let chosen = sequence(&row.prompt_input_ids, &row.chosen_input_ids, config)?;
    let rejected = sequence(&row.prompt_input_ids, &row.rejected_input_ids, config)?;
    Ok((chosen, rejected))
}

/// Whether `max_length` cuts `prompt + completion` of this row (either side).
pub fn exceeds_max_length(row: &TokenizedRow, config: &DataConfig) -> bool {
    let longest = row.chosen_input_ids.len().max(row.rejected_input_ids.len());
    config
        .max_length
        .is_some_and(|max| row.prompt_input_ids.len() + longest > max)
}

fn sequence(
    prompt: &[u32],
    completion: &[u32],
    config: &DataConfig,
) -> std::result::Result<Sequence, DropReason> {
    let mut input_ids = [prompt, completion].concat();
    let mut prompt_len = prompt.len();
    if let Some(max) = config.max_length
        && input_ids.len() > max
    {
        match config.truncation_mode {
            TruncationMode::KeepStart => {
                input_ids.truncate(max);
                prompt_len = prompt_len.min(max);
            }
            TruncationMode::KeepEnd => {
                let cut = input_ids.len() - max;
                input_ids.drain(..cut);
                prompt_len = prompt_len.saturating_sub(cut);
            }
        }
    }
    let sequence = Sequence {
        input_ids,
        prompt_len,
    };
    if sequence.prompt_len == 0 {
        Err(DropReason::PromptTruncatedAway)
    } else if sequence.completion_len() == 0 {
        Err(DropReason::CompletionTruncatedAway)
    } else {
        Ok(sequence)
    }
}
