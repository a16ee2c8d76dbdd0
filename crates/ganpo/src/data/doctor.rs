//! The dataset doctor behind `ganpo check-data` and the summary `ganpo train` prints at start:
//! every record goes through the training pipeline, and everything that would fail, be dropped,
//! be cut, or quietly train the wrong thing is reported with its location, plus length statistics
//! and how often `chosen` is the longer completion (the length bias DPO is known to exploit).

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use super::config::DataConfig;
use super::dataset::{Prepared, prepare};
use super::record::Record;
use super::summary::DroppedExample;
use super::template_check::template_warnings;
use super::warnings::{DataWarning, WarningKind, record_warnings};
use crate::tokenize::Tokenizer;

/// A record that cannot be trained on, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataError {
    /// Where the record is.
    pub location: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// A limit on the length of `prompt + completion`: the positions of a model or discriminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionLimit {
    /// Most tokens in one sequence.
    pub positions: usize,
    /// What sets it, for messages (`the model's max_position_embeddings`).
    pub what: String,
}

/// Minimum, median, mean, 95th percentile and maximum of token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LengthStats {
    /// Shortest.
    pub min: usize,
    /// Middle value.
    pub median: usize,
    /// Average.
    pub mean: f64,
    /// 95th percentile.
    pub p95: usize,
    /// Longest.
    pub max: usize,
}

impl LengthStats {
    fn of(mut xs: Vec<usize>) -> Self {
        if xs.is_empty() {
            return LengthStats::default();
        }
        xs.sort_unstable();
        let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
        LengthStats {
            min: xs[0],
            median: at(0.5),
            mean: xs.iter().sum::<usize>() as f64 / xs.len() as f64,
            p95: at(0.95),
            max: xs[xs.len() - 1],
        }
    }
}

/// Everything the doctor found in one file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DataReport {
    /// The file checked.
    pub file: String,
    /// Records read.
    pub records: usize,
    /// Records that would be trained on.
    pub kept: usize,
    /// Records that cannot be used (training refuses the file while there are any).
    pub errors: Vec<DataError>,
    /// Records training drops, with the reason.
    pub dropped: Vec<DroppedExample>,
    /// Records used but suspicious.
    pub warnings: Vec<DataWarning>,
    /// Tokens the length limits cut, over all kept and dropped records (both sequences).
    pub tokens_truncated: usize,
    /// Records the length limits cut.
    pub records_truncated: usize,
    /// Prompt tokens per record, before the limits.
    pub prompt_tokens: LengthStats,
    /// Chosen-completion tokens (EOS included), before the limits.
    pub chosen_tokens: LengthStats,
    /// Rejected-completion tokens (EOS included), before the limits.
    pub rejected_tokens: LengthStats,
    /// Fraction of records whose chosen completion has more tokens than the rejected one.
    pub chosen_longer: f64,
    /// Fraction whose chosen completion has fewer tokens.
    pub chosen_shorter: f64,
}

/// What one record contributes.
struct Checked {
    error: Option<DataError>,
    dropped: Option<DroppedExample>,
    warnings: Vec<DataWarning>,
    lengths: Option<(usize, usize, usize)>,
    truncated: usize,
}

/// The message of `e` without the location a [`crate::Error::Data`] already carries.
fn message(e: crate::Error) -> String {
    match e {
        crate::Error::Data { message, .. } => message,
        other => other.to_string(),
    }
}

fn warning(location: &str, kind: WarningKind, detail: String) -> DataWarning {
    DataWarning {
        location: location.to_string(),
        kind,
        detail,
    }
}

fn check(
    record: Record,
    tok: &Tokenizer,
    config: &DataConfig,
    limits: &[PositionLimit],
) -> Checked {
    let location = record.location.clone();
    let mut out = Checked {
        error: None,
        dropped: None,
        warnings: [record_warnings(&record), template_warnings(&record, tok)].concat(),
        lengths: None,
        truncated: 0,
    };
    let unlimited = DataConfig {
        max_length: None,
        max_prompt_length: None,
        max_completion_length: None,
        ..config.clone()
    };
    let full = match prepare(record.clone(), tok, &unlimited) {
        Ok(Prepared::Kept(_, row) | Prepared::Dropped(_, row)) => row,
        Err(e) => {
            out.error = Some(DataError {
                location,
                message: message(e),
            });
            return out;
        }
    };
    let (p, c, r) = (
        full.prompt_input_ids.len(),
        full.chosen_input_ids.len(),
        full.rejected_input_ids.len(),
    );
    out.lengths = Some((p, c, r));
    let bos = tok.special_tokens().bos.as_ref().map(|t| t.id);
    if bos.is_some()
        && full
            .prompt_input_ids
            .iter()
            .take(2)
            .all(|&t| Some(t) == bos)
        && p >= 2
    {
        out.warnings.push(warning(
            &location,
            WarningKind::DoubleBos,
            "the prompt starts with BOS twice (the text or chat template already writes it)".into(),
        ));
    }
    match prepare(record, tok, config) {
        Ok(Prepared::Dropped(reason, _)) => {
            out.dropped = Some(DroppedExample { location, reason });
        }
        Ok(Prepared::Kept(pair, _)) => {
            let kept = pair.chosen.input_ids.len() + pair.rejected.input_ids.len();
            out.truncated = (p + c + p + r).saturating_sub(kept);
            let eos = tok.special_tokens().eos.as_ref().map(|t| t.id);
            for (name, seq) in [("chosen", &pair.chosen), ("rejected", &pair.rejected)] {
                if seq.input_ids.last().copied() != eos {
                    out.warnings.push(warning(
                        &location,
                        WarningKind::MissingEos,
                        format!("`{name}` was cut before its EOS (data.max_length / max_completion_length)"),
                    ));
                }
                let len = seq.input_ids.len();
                if let Some(l) = limits.iter().find(|l| len > l.positions) {
                    out.error = Some(DataError {
                        location: location.clone(),
                        message: format!(
                            "prompt + {name} is {len} tokens, more than {} ({}); lower data.max_length to at most {}",
                            l.what, l.positions, l.positions
                        ),
                    });
                }
            }
        }
        Err(e) => {
            out.error = Some(DataError {
                location,
                message: message(e),
            })
        }
    }
    out
}

/// Runs every record through the pipeline with `config`'s limits and checks the kept sequences
/// against `limits`. Never stops at the first problem: everything is reported.
pub fn diagnose(
    file: &str,
    records: Vec<Record>,
    tokenizer: &Tokenizer,
    config: &DataConfig,
    limits: &[PositionLimit],
) -> DataReport {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut duplicates = Vec::new();
    for r in &records {
        let key = format!("{:?}\u{0}{:?}\u{0}{:?}", r.prompt, r.chosen, r.rejected);
        match seen.get(&key) {
            Some(first) => duplicates.push(warning(
                &r.location,
                WarningKind::Duplicate,
                format!("same as {first}"),
            )),
            None => {
                seen.insert(key, r.location.clone());
            }
        }
    }
    let count = records.len();
    let checked: Vec<Checked> = records
        .into_par_iter()
        .map(|r| check(r, tokenizer, config, limits))
        .collect();
    let mut report = DataReport {
        file: file.to_string(),
        records: count,
        ..DataReport::default()
    };
    let (mut prompts, mut chosen, mut rejected) = (Vec::new(), Vec::new(), Vec::new());
    let (mut longer, mut shorter) = (0usize, 0usize);
    for c in checked {
        report.warnings.extend(c.warnings);
        report.tokens_truncated += c.truncated;
        report.records_truncated += usize::from(c.truncated > 0);
        if let Some((p, ch, rj)) = c.lengths {
            prompts.push(p);
            chosen.push(ch);
            rejected.push(rj);
            longer += usize::from(ch > rj);
            shorter += usize::from(ch < rj);
        }
        match (c.error, c.dropped) {
            (Some(e), _) => report.errors.push(e),
            (None, Some(d)) => report.dropped.push(d),
            (None, None) => report.kept += 1,
        }
    }
    report.warnings.extend(duplicates);
    let measured = prompts.len().max(1) as f64;
    report.chosen_longer = longer as f64 / measured;
    report.chosen_shorter = shorter as f64 / measured;
    report.prompt_tokens = LengthStats::of(prompts);
    report.chosen_tokens = LengthStats::of(chosen);
    report.rejected_tokens = LengthStats::of(rejected);
    report
}
