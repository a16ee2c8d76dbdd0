//! Resolving a record's prompt: an explicit prompt is kept; an implicit one is extracted from the
//! shared start of `chosen` and `rejected`, as TRL's `maybe_extract_prompt` / `extract_prompt`
//! (trl 0.23.1, `trl/data_utils.py`) do.

use super::record::{CHOSEN, Field, PROMPT, REJECTED, Record};
use crate::tokenize::Message;
use crate::{Error, Result};

/// A preference example with an explicit prompt, in one form throughout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Example {
    /// Plain text, tokenized as is.
    Plain {
        /// The prompt text.
        prompt: String,
        /// The preferred completion text.
        chosen: String,
        /// The dispreferred completion text.
        rejected: String,
    },
    /// Chat messages, rendered with the tokenizer's chat template.
    Chat {
        /// The conversation so far (ends with a `user` message, or an `assistant` message to continue).
        prompt: Vec<Message>,
        /// The preferred continuation.
        chosen: Vec<Message>,
        /// The dispreferred continuation.
        rejected: Vec<Message>,
    },
}

impl Record {
    /// Resolves the prompt as TRL's `maybe_extract_prompt` does:
    ///
    /// - `prompt`, `chosen`, `rejected` all strings, or all message lists: used as they are.
    /// - `chosen` and `rejected` message lists without a `prompt`, or with a string `prompt` (the
    ///   UltraFeedback layout, where the prompt is repeated inside the conversations): the prompt is
    ///   their longest common prefix of messages, and a string `prompt` is ignored.
    /// - `chosen` and `rejected` strings without a `prompt`: the prompt is their longest common
    ///   prefix of characters, one character shorter when that prefix ends with a space (so the
    ///   space starts the completions).
    ///
    /// When one of `chosen`/`rejected` is a prefix of the other, TRL's loop ends one element before
    /// the shorter one's end; that is kept, so neither completion is empty. Errors (naming the
    /// record's location): `chosen` and `rejected` in different forms, a message-list prompt with
    /// string completions, and an implicit prompt that would be empty (TRL would go on with an empty
    /// or, through Python's `[-1]`, a wrong prompt).
    pub fn into_example(self) -> Result<Example> {
        let location = self.location;
        match (self.prompt, self.chosen, self.rejected) {
            (Some(Field::Text(prompt)), Field::Text(chosen), Field::Text(rejected)) => {
                Ok(Example::Plain {
                    prompt,
                    chosen,
                    rejected,
                })
            }
            (None, Field::Text(chosen), Field::Text(rejected)) => {
                let c: Vec<char> = chosen.chars().collect();
                let r: Vec<char> = rejected.chars().collect();
                let at = common_prefix_split(&c, &r, |i| c[i] == ' ')
                    .ok_or_else(|| no_shared_prompt(&location))?;
                // `at` counts characters (as Python's `str` indexing does); slice at byte offsets.
                let chosen_at = byte_offset(&chosen, at);
                let rejected_at = byte_offset(&rejected, at);
                Ok(Example::Plain {
                    prompt: chosen[..chosen_at].to_owned(),
                    chosen: chosen[chosen_at..].to_owned(),
                    rejected: rejected[rejected_at..].to_owned(),
                })
            }
            (Some(Field::Messages(prompt)), Field::Messages(chosen), Field::Messages(rejected)) => {
                Ok(Example::Chat {
                    prompt,
                    chosen,
                    rejected,
                })
            }
            (
                None | Some(Field::Text(_)),
                Field::Messages(mut chosen),
                Field::Messages(rejected),
            ) => {
                // A message is never the string " ", so TRL's space rule never applies here.
                let at = common_prefix_split(&chosen, &rejected, |_| false)
                    .ok_or_else(|| no_shared_prompt(&location))?;
                let rejected = rejected[at..].to_vec();
                let completion = chosen.split_off(at);
                Ok(Example::Chat {
                    prompt: chosen,
                    chosen: completion,
                    rejected,
                })
            }
            (Some(Field::Messages(_)), Field::Text(_), Field::Text(_)) => Err(Error::data(
                location,
                format!(
                    "field `{PROMPT}` is a list of messages but `{CHOSEN}` and `{REJECTED}` are strings; \
                     give all three as strings, or all three as message lists"
                ),
            )),
            (_, chosen, rejected) => Err(Error::data(
                location,
                format!(
                    "field `{CHOSEN}` is {} but `{REJECTED}` is {}; give both in the same form",
                    chosen.kind(),
                    rejected.kind()
                ),
            )),
        }
    }
}

/// TRL's `extract_prompt` split point: the index of the first element where `chosen` and
/// `rejected` differ, one less when `space_before(index - 1)`; without a difference, the last index
/// of the shorter one (Python's loop variable after a full loop). `None` when that leaves an empty
/// prompt. Both inputs are non-empty (empty fields are rejected when reading).
fn common_prefix_split<A, B>(
    chosen: &[A],
    rejected: &[B],
    space_before: impl Fn(usize) -> bool,
) -> Option<usize>
where
    A: PartialEq<B>,
{
    let shortest = chosen.len().min(rejected.len());
    let at = match (0..shortest).find(|&i| chosen[i] != rejected[i]) {
        // TRL would index chosen[-1] here and build a prompt that is not shared.
        Some(0) => return None,
        Some(i) if space_before(i - 1) => i - 1,
        Some(i) => i,
        None => shortest.checked_sub(1)?,
    };
    (at > 0).then_some(at)
}

/// The byte offset of character `index` of `text` (its length past the end).
fn byte_offset(text: &str, index: usize) -> usize {
    text.char_indices()
        .nth(index)
        .map_or(text.len(), |(b, _)| b)
}

fn no_shared_prompt(location: &str) -> Error {
    Error::data(
        location,
        format!(
            "no `{PROMPT}` field, and `{CHOSEN}` and `{REJECTED}` share no leading text from which to \
             extract one; add a `{PROMPT}` field"
        ),
    )
}
