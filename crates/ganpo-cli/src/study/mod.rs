//! `ganpo study sentiment`: a real-model study. SmolLM2-135M-Instruct continues prefixes of
//! Brown-corpus sentences; VADER's compound sentiment of the continuation is the reward; the
//! reference's best-vs-worst samples are the preference pairs; DPO at several β, DPO + GANPO and
//! SimPO (± GANPO) are trained on them and compared on held-out prompts at several temperatures
//! (reward, KL, text quality as the reference sees it), with figures and bootstrap verdicts.
//! Every phase is cached on disk and skipped on rerun; see docs/study.md.

pub mod arm;
pub mod config;
pub mod corpus;
pub mod evaluate;
pub mod figures;
pub mod pairs;
pub mod per_prompt;
pub mod progress;
pub mod prompting;
pub mod report;
pub mod run;
pub mod sampling;
pub mod store;
pub mod summary;
pub mod train;
pub mod verdicts;
