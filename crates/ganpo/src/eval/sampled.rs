//! Evaluation on responses sampled from the policy at one temperature: the Monte-Carlo sequence
//! KL(π‖π_ref), the exact per-token KL along the sampled tokens, response lengths, and (with a
//! judge) scores and the win rate against the reference's samples drawn with the same seeds.
//!
//! Log-probs are those of the models themselves (temperature 1) on samples drawn at temperature
//! T, so the sequence estimate is `E_{y∼π_T}[log π(y) − log π_ref(y)]`, the unbiased KL only at
//! T = 1. A sample that ended on EOS is scored with its EOS token: stopping is part of `y`.

use std::collections::BTreeMap;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::kl::{sequence_kl_estimate, token_kl};
use crate::generate::{Generation, GenerationConfig, SamplingConfig, generate};
use crate::judge::{Judge, win_rate};
use crate::logps::sequence_logps;
use crate::model::CausalLm;
use crate::tokenize::Tokenizer;
use crate::{Error, Result};

/// A prompt to sample from: its text (for judges) and its token ids (for the models).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalPrompt {
    /// The prompt as a judge reads it.
    pub text: String,
    /// The prompt as the models read it.
    pub ids: Vec<u32>,
}

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSettings {
    /// Sampling temperature (0 = greedy).
    pub temperature: f64,
    /// Samples per prompt.
    pub samples: usize,
    /// Most new tokens per sample.
    pub max_new_tokens: usize,
    /// Base seed; sample `s` of batch `c` uses a seed derived from `(seed, s, c)`.
    pub seed: u64,
    /// Prompts per generation / scoring batch.
    pub batch_size: usize,
}

/// Judge results at one temperature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeSummary {
    /// Mean judge score of the policy's samples.
    pub score_mean: f64,
    /// Mean of each named component of the policy's scores.
    pub components: BTreeMap<String, f64>,
    /// Fraction of the policy's samples with `structure == 1`, when the judge reports `structure`.
    pub structure_valid_rate: Option<f64>,
    /// Mean judge score of the reference's samples.
    pub reference_score_mean: f64,
    /// Win rate of the policy over the reference (ties count half).
    pub win_rate: f64,
    /// Samples where the policy scored higher.
    pub wins: usize,
    /// Samples with equal scores.
    pub ties: usize,
    /// Samples where the reference scored higher.
    pub losses: usize,
}

/// One temperature's row of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemperatureRow {
    /// Sampling temperature.
    pub temperature: f64,
    /// Policy samples drawn (prompts × samples per prompt).
    pub samples: usize,
    /// Monte-Carlo `mean_y [log π(y) − log π_ref(y)]` over the policy's samples.
    pub sequence_kl: f64,
    /// Standard error of that mean.
    pub sequence_kl_stderr: f64,
    /// Exact KL(π‖π_ref) of the next-token distributions, averaged over the sampled positions.
    pub token_kl: f64,
    /// Scored positions (sampled tokens plus EOS where a sample stopped).
    pub tokens: usize,
    /// Mean response length in tokens (EOS excluded).
    pub length_mean: f64,
    /// Standard deviation (population) of the response length.
    pub length_std: f64,
    /// Judge results, when a judge was given.
    pub judge: Option<JudgeSummary>,
}

/// Mixes the base seed with the sample and batch indices (SplitMix64 increment), so every batch
/// of every sample gets its own random streams.
fn derived_seed(seed: u64, sample: usize, chunk: usize, chunks: usize) -> u64 {
    seed.wrapping_add(((sample * chunks + chunk) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Samples `settings.samples` responses per prompt from `model`, in prompt-major order within
/// each sample index: entry `s * prompts.len() + i` is sample `s` of prompt `i`.
pub fn sample_responses(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    prompts: &[EvalPrompt],
    settings: &SampleSettings,
) -> Result<Vec<Generation>> {
    let size = settings.batch_size.max(1);
    let chunks = prompts.len().div_ceil(size);
    let mut out = Vec::with_capacity(prompts.len() * settings.samples);
    for s in 0..settings.samples {
        for (c, chunk) in prompts.chunks(size).enumerate() {
            let config = GenerationConfig {
                max_new_tokens: settings.max_new_tokens,
                min_new_tokens: 0,
                sampling: SamplingConfig {
                    temperature: settings.temperature,
                    top_k: None,
                    top_p: None,
                },
                seed: derived_seed(settings.seed, s, c, chunks),
                stop_strings: Vec::new(),
            };
            let ids: Vec<Vec<u32>> = chunk.iter().map(|p| p.ids.clone()).collect();
            out.extend(generate(model, tokenizer, &ids, &config)?);
        }
    }
    Ok(out)
}

/// Per row: summed completion log-probs under both models, and the exact token KL summed over
/// the row's completion positions with their count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompletionScores {
    /// `log π(completion | prompt)`.
    pub policy_logps: Vec<f64>,
    /// `log π_ref(completion | prompt)`.
    pub ref_logps: Vec<f64>,
    /// `Σ_t KL(π(·|y<t) ‖ π_ref(·|y<t))` over the completion's positions.
    pub token_kl: Vec<f64>,
    /// Completion positions scored.
    pub tokens: Vec<f64>,
}

/// Scores `prompt ++ completion` rows under both models, in batches (right-padded). When
/// `reference` is `None` the policy is its own reference: it runs once and every KL is 0.
pub fn score_completions(
    policy: &CausalLm,
    reference: Option<&CausalLm>,
    rows: &[(&[u32], Vec<u32>)],
    pad_id: u32,
    batch_size: usize,
) -> Result<CompletionScores> {
    let mut scores = CompletionScores::default();
    let device = policy.device();
    for chunk in rows.chunks(batch_size.max(1)) {
        let width = chunk
            .iter()
            .map(|(p, c)| p.len() + c.len())
            .max()
            .unwrap_or(0);
        let (mut ids, mut attn, mut loss) = (vec![], vec![], vec![]);
        for (prompt, completion) in chunk {
            let len = prompt.len() + completion.len();
            ids.extend(prompt.iter().chain(completion).copied());
            ids.extend(std::iter::repeat_n(pad_id, width - len));
            attn.extend(std::iter::repeat_n(1u32, len));
            attn.extend(std::iter::repeat_n(0u32, width - len));
            loss.extend(std::iter::repeat_n(0f32, prompt.len()));
            loss.extend(std::iter::repeat_n(1f32, completion.len()));
            loss.extend(std::iter::repeat_n(0f32, width - len));
        }
        let shape = (chunk.len(), width);
        let ids = Tensor::from_vec(ids, shape, device)?;
        let attn = Tensor::from_vec(attn, shape, device)?;
        let loss = Tensor::from_vec(loss, shape, device)?;
        let p = policy.forward(&ids, &attn)?.logits.detach();
        let sp = sequence_logps(&p, &ids, &loss)?;
        let f64s = |t: &Tensor| t.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>();
        let counts = f64s(&sp.mask.to_dtype(candle_core::DType::F32)?.sum(1)?)?;
        let policy_logps = f64s(&sp.logps)?;
        match reference {
            Some(reference) => {
                let r = reference.forward(&ids, &attn)?.logits.detach();
                let sr = sequence_logps(&r, &ids, &loss)?;
                let (kl, _) = token_kl(&p, &r, &sp.mask)?;
                scores.ref_logps.extend(f64s(&sr.logps)?);
                scores.token_kl.extend(f64s(&kl)?);
            }
            None => {
                scores.ref_logps.extend(&policy_logps);
                scores
                    .token_kl
                    .extend(std::iter::repeat_n(0.0, chunk.len()));
            }
        }
        scores.policy_logps.extend(policy_logps);
        scores.tokens.extend(counts);
    }
    Ok(scores)
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn judge_summary(
    judge: &dyn Judge,
    prompts: &[String],
    policy: &[String],
    reference: &[String],
) -> Result<JudgeSummary> {
    let scores: Vec<_> = prompts
        .iter()
        .zip(policy)
        .map(|(p, r)| judge.score(p, r))
        .collect();
    let n = scores.len().max(1) as f64;
    let mut components = BTreeMap::new();
    for s in &scores {
        for (k, v) in &s.components {
            *components.entry(k.clone()).or_insert(0.0) += v / n;
        }
    }
    let structure_valid_rate = scores
        .iter()
        .map(|s| s.components.get("structure"))
        .collect::<Option<Vec<_>>>()
        .filter(|v| !v.is_empty())
        .map(|v| v.iter().filter(|&&&x| x == 1.0).count() as f64 / n);
    let reference_score_mean = prompts
        .iter()
        .zip(reference)
        .map(|(p, r)| judge.score(p, r).score)
        .sum::<f64>()
        / n;
    let wr = win_rate(judge, prompts, policy, reference)?;
    Ok(JudgeSummary {
        score_mean: scores.iter().map(|s| s.score).sum::<f64>() / n,
        components,
        structure_valid_rate,
        reference_score_mean,
        win_rate: wr.rate,
        wins: wr.wins,
        ties: wr.ties,
        losses: wr.losses,
    })
}

/// Samples from the policy (and, with a judge, from the reference with the same seeds) and
/// computes one temperature's row. Both models must share the tokenizer's vocabulary.
pub fn temperature_row(
    policy: &CausalLm,
    reference: &CausalLm,
    tokenizer: &Tokenizer,
    prompts: &[EvalPrompt],
    judge: Option<&dyn Judge>,
    settings: &SampleSettings,
) -> Result<TemperatureRow> {
    if prompts.is_empty() || settings.samples == 0 {
        return Err(Error::Config(format!(
            "sampled evaluation needs prompts and at least one sample per prompt: {} prompts, {} samples",
            prompts.len(),
            settings.samples
        )));
    }
    let gens = sample_responses(policy, tokenizer, prompts, settings)?;
    let prompt_of = |k: usize| &prompts[k % prompts.len()];
    let rows: Vec<(&[u32], Vec<u32>)> = gens
        .iter()
        .enumerate()
        .map(|(k, g)| {
            let mut completion = g.tokens.clone();
            completion.extend(g.eos_token);
            (prompt_of(k).ids.as_slice(), completion)
        })
        .collect();
    let s = score_completions(
        policy,
        Some(reference),
        &rows,
        tokenizer.pad_id(),
        settings.batch_size,
    )?;
    let sequence_kl = sequence_kl_estimate(&s.policy_logps, &s.ref_logps)?;
    let tokens: f64 = s.tokens.iter().sum();
    let ratios: Vec<f64> = s
        .policy_logps
        .iter()
        .zip(&s.ref_logps)
        .map(|(p, q)| p - q)
        .collect();
    let (_, ratio_std) = mean_std(&ratios);
    let lengths: Vec<f64> = gens.iter().map(|g| g.tokens.len() as f64).collect();
    let (length_mean, length_std) = mean_std(&lengths);
    let judge = match judge {
        None => None,
        Some(judge) => {
            let ref_gens = sample_responses(reference, tokenizer, prompts, settings)?;
            let texts: Vec<String> = (0..gens.len()).map(|k| prompt_of(k).text.clone()).collect();
            let a: Vec<String> = gens.iter().map(|g| g.text.clone()).collect();
            let b: Vec<String> = ref_gens.into_iter().map(|g| g.text).collect();
            Some(judge_summary(judge, &texts, &a, &b)?)
        }
    };
    Ok(TemperatureRow {
        temperature: settings.temperature,
        samples: gens.len(),
        sequence_kl,
        sequence_kl_stderr: ratio_std / (ratios.len().max(2) as f64 - 1.0).sqrt(),
        token_kl: if tokens > 0.0 {
            s.token_kl.iter().sum::<f64>() / tokens
        } else {
            0.0
        },
        tokens: tokens as usize,
        length_mean,
        length_std,
        judge,
    })
}
