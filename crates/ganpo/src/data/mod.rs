//! Preference data: reading records, tokenizing them with TRL's legacy DPO semantics, and
//! collating `[chosen; rejected]` batches.
//!
//! The stages, each checked against TRL 0.23.1 by `tests/data.rs` (fixture from
//! `tools/golden/trl_data.py`):
//!
//! 1. [`read_records`]: JSONL or Parquet rows with `prompt` (optional), `chosen`, `rejected`, as
//!    strings or chat messages ([`Record`]).
//! 2. [`Record::into_example`]: the prompt made explicit, extracting an implicit one as TRL's
//!    `maybe_extract_prompt` ([`Example`]).
//! 3. [`Example::render`]: conversations through the chat template as TRL's
//!    `maybe_apply_chat_template` ([`RenderedExample`]).
//! 4. [`tokenize_row`]: ids with EOS, prompt and completions cut to their limits, as TRL's
//!    `DPOTrainer.tokenize_row` ([`TokenizedRow`]).
//! 5. [`concatenate`]: `prompt + completion` cut to `max_length` per `truncation_mode`, as TRL's
//!    `concatenated_forward`; pairs left without prompt or completion are dropped with a
//!    [`DropReason`] ([`TokenizedPair`]).
//! 6. [`Batch::collate`]: `[chosen; rejected]` rows, right-padded, with attention and loss masks,
//!    and [`Batch::to_tensors`].
//!
//! [`PreferenceDataset::load`] runs stages 1–5 over a file and reports a [`DataSummary`].

mod batch;
mod config;
mod conversation;
mod dataset;
mod doctor;
mod doctor_report;
mod json_keys;
mod jsonl;
mod pair;
mod parquet;
mod prompt;
mod record;
mod summary;
mod template_check;
mod tokenize_row;
mod warnings;

pub use batch::{Batch, BatchTensors};
pub use config::{DataConfig, TruncationMode};
pub use conversation::RenderedExample;
pub use dataset::{PreferenceDataset, Prepared, prepare};
pub use doctor::{DataError, DataReport, LengthStats, PositionLimit, diagnose};
pub use jsonl::read_jsonl;
pub use pair::{DropReason, Sequence, TokenizedPair, concatenate, exceeds_max_length};
pub use parquet::read_parquet;
pub use prompt::Example;
pub use record::{CHOSEN, Field, PROMPT, REJECTED, Record, read_records};
pub use summary::{DataSummary, DroppedExample};
pub use tokenize_row::{TokenizedRow, tokenize_row};
pub use warnings::{DataWarning, WarningKind, record_warnings};
