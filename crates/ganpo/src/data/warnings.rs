//! Records that are kept but probably not what the user meant: a prompt extracted from `chosen`
//! and `rejected` (with where the split fell), an empty or whitespace-only completion (which
//! trains on EOS alone), and `chosen` identical to `rejected` (a pair with no preference in it).

use serde::Serialize;

use super::prompt::Example;
use super::record::{Field, Record};

/// What is suspicious about a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// No `prompt` field: the prompt was taken from the shared start of two strings.
    ImplicitPrompt,
    /// A completion is empty or whitespace only once the prompt is split off.
    BlankCompletion,
    /// `chosen` and `rejected` are the same completion.
    IdenticalCompletions,
    /// The same prompt, chosen and rejected as an earlier record (`ganpo check-data`).
    Duplicate,
    /// The prompt starts with BOS twice (`ganpo check-data`).
    DoubleBos,
    /// A kept sequence was cut before its EOS, so it never teaches stopping (`ganpo check-data`).
    MissingEos,
    /// The chat template renders the conversation unexpectedly (`ganpo check-data`).
    ChatTemplate,
}

impl std::fmt::Display for WarningKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WarningKind::ImplicitPrompt => {
                "have no `prompt` field, so the prompt is the shared start of `chosen` and `rejected` (check where it was split; add a `prompt` field to be sure)"
            }
            WarningKind::BlankCompletion => {
                "have an empty or whitespace-only completion, which trains on EOS alone (fix or remove them)"
            }
            WarningKind::IdenticalCompletions => {
                "have `chosen` identical to `rejected`: no preference to learn, the loss gradient is zero (remove them)"
            }
            WarningKind::Duplicate => {
                "repeat an earlier record exactly, which weights it twice (remove the copies)"
            }
            WarningKind::DoubleBos => {
                "start with BOS twice (the text or the chat template already writes BOS; remove one)"
            }
            WarningKind::ChatTemplate => {
                "render unexpectedly with the chat template (check `ganpo render-example` on them)"
            }
            WarningKind::MissingEos => {
                "lose their EOS to the length limits, so they never teach the model to stop (raise data.max_length or max_completion_length)"
            }
        })
    }
}

/// One warning about a kept record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataWarning {
    /// Where the record is.
    pub location: String,
    /// What is suspicious.
    pub kind: WarningKind,
    /// Details, e.g. where an implicit prompt was split.
    pub detail: String,
}

/// The last `n` characters of `text`.
fn tail(text: &str, n: usize) -> String {
    let count = text.chars().count();
    let tail: String = text.chars().skip(count.saturating_sub(n)).collect();
    if count > n {
        format!("…{tail}")
    } else {
        tail
    }
}

/// The first `n` characters of `text`.
fn head(text: &str, n: usize) -> String {
    let h: String = text.chars().take(n).collect();
    if text.chars().count() > n {
        format!("{h}…")
    } else {
        h
    }
}

fn blank_messages(messages: &[crate::tokenize::Message]) -> bool {
    messages.iter().all(|m| m.content.trim().is_empty())
}

/// The warnings for `record` (none when it does not resolve: that error is reported elsewhere).
pub fn record_warnings(record: &Record) -> Vec<DataWarning> {
    let implicit_text = record.prompt.is_none() && matches!(record.chosen, Field::Text(_));
    let Ok(example) = record.clone().into_example() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut warn = |kind, detail: String| {
        out.push(DataWarning {
            location: record.location.clone(),
            kind,
            detail,
        })
    };
    match &example {
        Example::Plain {
            prompt,
            chosen,
            rejected,
        } => {
            if implicit_text {
                warn(
                    WarningKind::ImplicitPrompt,
                    format!("split as {:?} | {:?}", tail(prompt, 24), head(chosen, 24)),
                );
            }
            for (name, text) in [("chosen", chosen), ("rejected", rejected)] {
                if text.trim().is_empty() {
                    warn(
                        WarningKind::BlankCompletion,
                        format!("`{name}` is {text:?}"),
                    );
                }
            }
            if chosen == rejected {
                warn(WarningKind::IdenticalCompletions, String::new());
            }
        }
        Example::Chat {
            chosen, rejected, ..
        } => {
            for (name, messages) in [("chosen", chosen), ("rejected", rejected)] {
                if blank_messages(messages) {
                    warn(
                        WarningKind::BlankCompletion,
                        format!("`{name}` has no message with content"),
                    );
                }
            }
            if chosen == rejected {
                warn(WarningKind::IdenticalCompletions, String::new());
            }
        }
    }
    out
}
