//! Evaluation: KL to the reference, latent-space divergence diagnostics, and the full report of
//! a policy against its reference ([`report::evaluate`]).

pub mod kl;
pub mod latent;
pub mod mmd;
pub mod pool;
pub mod preference;
pub mod probe;
pub mod report;
pub mod sampled;
mod table;
pub mod text_quality;

pub use latent::{LatentDiagnostics, latent_diagnostics};
pub use preference::{PooledLatents, PreferenceEval, preference_eval};
pub use probe::{ProbeConfig, ProbeResult, linear_probe};
pub use report::{EvalReport, EvalSettings, evaluate, prompts_from_pairs, prompts_from_texts};
pub use sampled::{
    CompletionScores, EvalPrompt, JudgeSummary, SampleSettings, TemperatureRow, score_completions,
    temperature_row,
};
