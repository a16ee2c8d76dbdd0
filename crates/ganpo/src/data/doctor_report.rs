//! How a [`DataReport`] reads: a summary block, then each kind of problem with its count and the
//! first few locations.

use super::doctor::{DataReport, LengthStats};
use super::pair::DropReason;
use super::warnings::WarningKind;

/// Locations shown per kind of problem before "and N more".
const SHOWN: usize = 5;

fn list(items: &[String]) -> String {
    let more = match items.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!("{}{more}", items[..items.len().min(SHOWN)].join(", "))
}

fn stats(s: &LengthStats) -> String {
    format!(
        "min {}, median {}, mean {:.1}, p95 {}, max {}",
        s.min, s.median, s.mean, s.p95, s.max
    )
}

impl DataReport {
    /// Whether training would refuse this file.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || self.kept == 0
    }
}

impl std::fmt::Display for DataReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: {} records, {} usable, {} with errors, {} dropped, {} with warnings",
            self.file,
            self.records,
            self.kept,
            self.errors.len(),
            self.dropped.len(),
            {
                let mut at: Vec<&str> = self.warnings.iter().map(|w| w.location.as_str()).collect();
                at.sort_unstable();
                at.dedup();
                at.len()
            }
        )?;
        writeln!(f, "  prompt tokens:   {}", stats(&self.prompt_tokens))?;
        writeln!(f, "  chosen tokens:   {}", stats(&self.chosen_tokens))?;
        writeln!(f, "  rejected tokens: {}", stats(&self.rejected_tokens))?;
        writeln!(
            f,
            "  chosen longer than rejected in {:.1} % of records, shorter in {:.1} % (DPO can learn length instead of quality when this is lopsided)",
            100.0 * self.chosen_longer,
            100.0 * self.chosen_shorter
        )?;
        writeln!(
            f,
            "  length limits cut {} records ({} tokens)",
            self.records_truncated, self.tokens_truncated
        )?;
        for e in self.errors.iter().take(SHOWN) {
            writeln!(f, "  error: {}: {}", e.location, e.message)?;
        }
        if self.errors.len() > SHOWN {
            writeln!(f, "  ... and {} more errors", self.errors.len() - SHOWN)?;
        }
        let mut reasons: Vec<DropReason> = self.dropped.iter().map(|d| d.reason).collect();
        reasons.sort();
        reasons.dedup();
        for reason in reasons {
            let at: Vec<String> = self
                .dropped
                .iter()
                .filter(|d| d.reason == reason)
                .map(|d| d.location.clone())
                .collect();
            writeln!(f, "  dropped {} because {reason}: {}", at.len(), list(&at))?;
        }
        let mut kinds: Vec<WarningKind> = self.warnings.iter().map(|w| w.kind).collect();
        kinds.sort();
        kinds.dedup();
        for kind in kinds {
            let at: Vec<String> = self
                .warnings
                .iter()
                .filter(|w| w.kind == kind)
                .map(|w| match w.detail.as_str() {
                    "" => w.location.clone(),
                    d => format!("{} ({d})", w.location),
                })
                .collect();
            writeln!(f, "  warning: {} records {kind}: {}", at.len(), list(&at))?;
        }
        Ok(())
    }
}
