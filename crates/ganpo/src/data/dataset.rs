//! The whole data pipeline for one file: read records, resolve prompts, render, tokenize, cut to
//! length, and count what was dropped.

use std::path::Path;

use rayon::prelude::*;

use super::config::DataConfig;
use super::pair::{DropReason, TokenizedPair, concatenate, exceeds_max_length};
use super::record::{Record, read_records};
use super::summary::{DataSummary, DroppedExample};
use super::tokenize_row::{TokenizedRow, tokenize_row};
use super::warnings::{DataWarning, record_warnings};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};

/// Tokenized preference pairs with the summary of how they were obtained.
#[derive(Debug, Clone)]
pub struct PreferenceDataset {
    /// The kept pairs, in file order.
    pub pairs: Vec<TokenizedPair>,
    /// What was read, cut and dropped.
    pub summary: DataSummary,
}

/// The fate of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Kept, with the tokenized row it came from (for the truncation counts).
    Kept(TokenizedPair, TokenizedRow),
    /// Dropped, for this reason.
    Dropped(DropReason, TokenizedRow),
}

/// Runs one record through the pipeline: [`Record::into_example`], `Example::render`,
/// [`tokenize_row`], [`concatenate`]. Errors name the record's location.
pub fn prepare(record: Record, tokenizer: &Tokenizer, config: &DataConfig) -> Result<Prepared> {
    let location = record.location.clone();
    let rendered = record.into_example()?.render(tokenizer, &location)?;
    let row = tokenize_row(&rendered, tokenizer, config).map_err(|e| match e {
        Error::Data { .. } => e,
        other => Error::data(&location, other.to_string()),
    })?;
    Ok(match concatenate(&row, config) {
        Ok((chosen, rejected)) => Prepared::Kept(
            TokenizedPair {
                location,
                chosen,
                rejected,
            },
            row,
        ),
        Err(reason) => Prepared::Dropped(reason, row),
    })
}

impl PreferenceDataset {
    /// Reads `path` (JSONL or Parquet, see [`read_records`]) and tokenizes every record.
    pub fn load(path: &Path, tokenizer: &Tokenizer, config: &DataConfig) -> Result<Self> {
        config.validate()?;
        Self::from_records(read_records(path)?, tokenizer, config)
    }

    /// Tokenizes `records` (in parallel; the order is kept). Fails on the first bad record in file
    /// order, or when every pair is dropped; otherwise dropped pairs are listed in the summary.
    pub fn from_records(
        records: Vec<Record>,
        tokenizer: &Tokenizer,
        config: &DataConfig,
    ) -> Result<Self> {
        config.validate()?;
        if records.is_empty() {
            return Err(Error::Config("no preference records to tokenize".into()));
        }
        let count = records.len();
        let locations: Vec<String> = records.iter().map(|r| r.location.clone()).collect();
        let warnings: Vec<DataWarning> = records.par_iter().flat_map(record_warnings).collect();
        // Every record is prepared, so that the error reported is the first in file order.
        let prepared: Vec<Result<Prepared>> = records
            .into_par_iter()
            .map(|record| prepare(record, tokenizer, config))
            .collect();
        let prepared: Vec<Prepared> = prepared.into_iter().collect::<Result<_>>()?;
        let mut summary = DataSummary {
            records: count,
            warnings,
            ..DataSummary::default()
        };
        let mut pairs = Vec::with_capacity(count);
        for (prepared, location) in prepared.into_iter().zip(locations) {
            let row = match prepared {
                Prepared::Kept(pair, row) => {
                    pairs.push(pair);
                    row
                }
                Prepared::Dropped(reason, row) => {
                    summary.dropped.push(DroppedExample { location, reason });
                    row
                }
            };
            summary.prompt_truncated += usize::from(row.prompt_truncated);
            summary.completion_truncated += usize::from(row.completion_truncated);
            summary.length_truncated += usize::from(exceeds_max_length(&row, config));
        }
        summary.kept = pairs.len();
        if pairs.is_empty() {
            return Err(Error::Config(format!(
                "every example was dropped, nothing is left to train on; {summary}"
            )));
        }
        Ok(PreferenceDataset { pairs, summary })
    }

    /// Number of kept pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no pair was kept (never true for a dataset built by [`PreferenceDataset::load`]).
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}
