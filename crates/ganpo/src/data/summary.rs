//! What tokenizing a dataset kept, cut and dropped, so that no example is lost silently.

use serde::Serialize;

use super::pair::DropReason;
use super::warnings::{DataWarning, WarningKind};

/// A pair that was not kept, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroppedExample {
    /// Where the record is (`file:line` or `file:row N`).
    pub location: String,
    /// Why it was dropped.
    pub reason: DropReason,
}

/// Counts from tokenizing a dataset; its `Display` is the report shown to the user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DataSummary {
    /// Records read.
    pub records: usize,
    /// Pairs kept for training.
    pub kept: usize,
    /// Pairs dropped, in file order, with the reason.
    pub dropped: Vec<DroppedExample>,
    /// Kept or dropped examples whose prompt `max_prompt_length` shortened.
    pub prompt_truncated: usize,
    /// Examples with a completion that `max_completion_length` shortened.
    pub completion_truncated: usize,
    /// Examples with a `prompt + completion` sequence that `max_length` shortened.
    pub length_truncated: usize,
    /// Records that are used but look wrong (implicit prompt, blank or identical completions).
    pub warnings: Vec<DataWarning>,
}

impl DataSummary {
    /// How many pairs were dropped for `reason`.
    pub fn dropped_for(&self, reason: DropReason) -> usize {
        self.dropped.iter().filter(|d| d.reason == reason).count()
    }

    /// How many records were flagged with `kind`.
    pub fn warned_for(&self, kind: WarningKind) -> usize {
        self.warnings.iter().filter(|w| w.kind == kind).count()
    }
}

impl std::fmt::Display for DataSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records: {} pairs kept, {} dropped; truncated: {} prompts (max_prompt_length), \
             {} with completions cut (max_completion_length), {} with sequences cut (max_length)",
            self.records,
            self.kept,
            self.dropped.len(),
            self.prompt_truncated,
            self.completion_truncated,
            self.length_truncated
        )?;
        let mut reasons: Vec<DropReason> = self.dropped.iter().map(|d| d.reason).collect();
        reasons.sort();
        reasons.dedup();
        for reason in reasons {
            const SHOWN: usize = 5;
            let at: Vec<&str> = self
                .dropped
                .iter()
                .filter(|d| d.reason == reason)
                .map(|d| d.location.as_str())
                .collect();
            let more = match at.len().saturating_sub(SHOWN) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            write!(
                f,
                "\n  dropped {} because {reason}: {}{more}",
                at.len(),
                at[..at.len().min(SHOWN)].join(", ")
            )?;
        }
        let mut kinds: Vec<WarningKind> = self.warnings.iter().map(|w| w.kind).collect();
        kinds.sort();
        kinds.dedup();
        for kind in kinds {
            const SHOWN: usize = 3;
            let of_kind: Vec<&DataWarning> =
                self.warnings.iter().filter(|w| w.kind == kind).collect();
            let at: Vec<String> = of_kind
                .iter()
                .take(SHOWN)
                .map(|w| match w.detail.as_str() {
                    "" => w.location.clone(),
                    d => format!("{} ({d})", w.location),
                })
                .collect();
            let more = match of_kind.len().saturating_sub(SHOWN) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            write!(
                f,
                "\n  warning: {} records {kind}: {}{more}",
                of_kind.len(),
                at.join(", ")
            )?;
        }
        Ok(())
    }
}
