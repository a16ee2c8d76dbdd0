//! The built-in benchmark (`ganpo demo`): a synthetic structured-output task, a tiny model trained
//! on it from scratch, and preference-optimization arms compared on it.

pub mod arms;
pub mod claims;
pub mod config;
pub mod defects;
pub mod evaluate;
pub mod findings;
pub mod overopt;
pub mod pairs;
pub mod prepare;
pub mod report;
pub mod run;
pub mod sft;
pub mod stats;
pub mod task;
pub mod tokenizer;
pub mod tune;
pub mod tune_grid;
