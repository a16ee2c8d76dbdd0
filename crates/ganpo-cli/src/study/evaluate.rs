//! Generation-based evaluation of one model at one temperature on the held-out prompts: per
//! sample, its VADER compound (the reward), length, whether it stopped, its log-probs under the
//! policy and the reference, the exact per-token KL along it, the reference's per-token NLL of
//! it, distinct-2 and a repetition rate. Everything is kept per prompt, so the report's means,
//! standard errors and paired bootstraps are recomputed from the saved samples.

use std::path::{Path, PathBuf};

use ganpo::Result;
use ganpo::eval::score_completions;
use ganpo::eval::text_quality::{distinct_n, repetition_rate, words};
use ganpo::model::CausalLm;
use ganpo::tokenize::Tokenizer;
use serde::{Deserialize, Serialize};

use super::config::StudyConfig;
use super::pairs::compound;
use super::progress::Bar;
use super::sampling::{Sampling, sample_rows};
use super::store::{load_json, save_json};
use crate::judge::SentimentJudge;

/// Most rows scored in one forward pass.
const SCORING_BATCH: usize = 16;

/// One held-out prompt's sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The continuation.
    pub text: String,
    /// VADER compound in [−1, 1].
    pub reward: f64,
    /// Generated tokens (EOS excluded).
    pub length: usize,
    /// Whether it ended on EOS (else it hit the token budget).
    pub eos: bool,
    /// `log π(y|x)` (EOS included where it stopped).
    pub policy_logp: f64,
    /// `log π_ref(y|x)`.
    pub ref_logp: f64,
    /// Exact `Σ_t KL(π‖π_ref)` of the next-token distributions along `y`.
    pub token_kl_sum: f64,
    /// Positions scored (tokens plus the EOS where it stopped).
    pub scored: usize,
    /// Distinct-2 of its words (`None`: fewer than 2 words).
    pub distinct2: Option<f64>,
    /// Fraction of its word 4-grams repeating an earlier one (`None`: fewer than 4 words).
    pub repetition4: Option<f64>,
}

impl Sample {
    /// `log π(y) − log π_ref(y)`: the Monte-Carlo sequence-KL term.
    pub fn log_ratio(&self) -> f64 {
        self.policy_logp - self.ref_logp
    }

    /// Mean exact KL per scored position.
    pub fn token_kl(&self) -> f64 {
        self.token_kl_sum / self.scored.max(1) as f64
    }

    /// The reference's negative log-likelihood per scored position (nats/token).
    pub fn ref_nll(&self) -> f64 {
        -self.ref_logp / self.scored.max(1) as f64
    }
}

/// One model's samples at one temperature, in held-out prompt order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemperatureSamples {
    /// Sampling temperature.
    pub temperature: f64,
    /// One sample per held-out prompt.
    pub samples: Vec<Sample>,
    /// Wall-clock seconds (sampling and scoring).
    pub seconds: f64,
}

/// Samples `policy` on `prompts` at `sampling.temperature` and scores each sample; `reference`
/// is `None` when the policy is the reference itself (its KLs are then 0).
pub fn evaluate_at(
    policy: &CausalLm,
    reference: Option<&CausalLm>,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    sampling: Sampling,
    bar: &mut Bar,
    done_before: u64,
) -> Result<TemperatureSamples> {
    let started = std::time::Instant::now();
    let judge = SentimentJudge::default();
    let gens = sample_rows(policy, tokenizer, prompts, sampling, bar, done_before)?;
    let rows: Vec<(&[u32], Vec<u32>)> = prompts
        .iter()
        .zip(&gens)
        .map(|(p, g)| {
            let mut completion = g.tokens.clone();
            completion.extend(g.eos_token);
            (p.as_slice(), completion)
        })
        .collect();
    // A sample with no token and no EOS cannot occur (max_new_tokens ≥ 1), so every row scores.
    // Scoring holds [rows, positions, vocabulary] logits of both models and their log-softmax:
    // at most 16 rows at a time keeps that near 1 GB for SmolLM2's 49k vocabulary.
    let scores = score_completions(
        policy,
        reference,
        &rows,
        tokenizer.pad_id(),
        sampling.batch.min(SCORING_BATCH),
    )?;
    let samples = gens
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let w = words(&g.text);
            Sample {
                reward: compound(&judge, &g.text),
                length: g.tokens.len(),
                eos: g.eos_token.is_some(),
                policy_logp: scores.policy_logps[i],
                ref_logp: scores.ref_logps[i],
                token_kl_sum: scores.token_kl[i],
                scored: scores.tokens[i] as usize,
                distinct2: distinct_n(&w, 2),
                repetition4: repetition_rate(&w, 4),
                text: g.text,
            }
        })
        .collect();
    Ok(TemperatureSamples {
        temperature: sampling.temperature,
        samples,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Where the samples of temperature `t` are saved under an evaluation directory.
pub fn temperature_file(dir: &Path, t: f64) -> PathBuf {
    dir.join(format!("T{t}.json"))
}

/// Evaluates `policy` at every temperature not yet saved under `dir`; returns all temperatures'
/// samples and the seconds spent now.
pub fn evaluate_all(
    config: &StudyConfig,
    label: &str,
    policy: Option<&CausalLm>,
    reference: &CausalLm,
    tokenizer: &Tokenizer,
    ids: &[Vec<u32>],
    dir: &Path,
) -> Result<Vec<TemperatureSamples>> {
    let cached: Option<Vec<TemperatureSamples>> = config
        .temperatures
        .iter()
        .map(|&t| load_json(&temperature_file(dir, t)))
        .collect::<Result<_>>()?;
    if let Some(all) = cached {
        return Ok(all);
    }
    let total = (ids.len() * config.temperatures.len()) as u64;
    let mut bar = Bar::new(format!("evaluating {label}"), total, "samples");
    let mut out = Vec::new();
    for (i, &t) in config.temperatures.iter().enumerate() {
        let path = temperature_file(dir, t);
        let done = (i * ids.len()) as u64;
        let samples = match load_json::<TemperatureSamples>(&path)? {
            Some(s) => s,
            None => {
                let sampling = Sampling {
                    temperature: t,
                    max_new_tokens: config.eval_max_new_tokens,
                    seed: config.eval_seed,
                    batch: config.batch_size,
                };
                let s = match policy {
                    Some(p) => {
                        evaluate_at(p, Some(reference), tokenizer, ids, sampling, &mut bar, done)?
                    }
                    None => evaluate_at(reference, None, tokenizer, ids, sampling, &mut bar, done)?,
                };
                save_json(&path, &s)?;
                s
            }
        };
        bar.set(done + ids.len() as u64, done);
        out.push(samples);
    }
    bar.finish();
    Ok(out)
}
