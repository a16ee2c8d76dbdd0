//! Text generation with a key/value cache: batched, left-padded prompts; greedy or sampled
//! decoding; stops on EOS, stop strings or a token budget. Deterministic for a given seed: each
//! prompt has its own random stream, so results do not depend on how prompts are batched.

mod sampler;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use sampler::{SamplingConfig, argmax, sample};

use crate::model::CausalLm;
use crate::tokenize::Tokenizer;
use crate::{Error, Result};

/// Decoding settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerationConfig {
    /// Most tokens to generate per prompt.
    pub max_new_tokens: usize,
    /// Fewest tokens to generate per prompt: end-of-sequence tokens are ruled out before this many
    /// (transformers' `min_new_tokens`). Equal to `max_new_tokens`, every row gets the same length.
    pub min_new_tokens: usize,
    /// Token selection.
    #[serde(flatten)]
    pub sampling: SamplingConfig,
    /// Seed of the per-prompt random streams.
    pub seed: u64,
    /// Generation stops (and the text is cut) at the first of these strings.
    pub stop_strings: Vec<String>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_new_tokens: 128,
            min_new_tokens: 0,
            sampling: SamplingConfig::default(),
            seed: 0,
            stop_strings: Vec::new(),
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token was produced (not included in the text).
    Eos,
    /// A stop string appeared (the text is cut before it).
    StopString,
    /// `max_new_tokens` were generated.
    Length,
}

/// One prompt's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// Generated token ids (EOS excluded).
    pub tokens: Vec<u32>,
    /// Decoded text (special tokens skipped, cut at a stop string).
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// The end-of-sequence token that ended it (`finish_reason` is `Eos`), so that scoring a
    /// sample can include the probability of stopping.
    #[serde(default)]
    pub eos_token: Option<u32>,
}

/// The ids that end a generation: the tokenizer's EOS plus the model config's EOS list.
pub fn eos_ids(model: &CausalLm, tokenizer: &Tokenizer) -> Vec<u32> {
    let mut ids = model.config().eos_token_id.clone();
    if let Some(eos) = &tokenizer.special_tokens().eos {
        ids.push(eos.id);
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Checks up front that every prompt plus `max_new_tokens` fits the model's positions
/// (`max_position_embeddings`), naming the first prompt (0-based) that does not and the largest
/// `max_new_tokens` that would fit, so that no batch fails half-way.
pub fn check_positions(
    model: &CausalLm,
    prompts: &[Vec<u32>],
    max_new_tokens: usize,
) -> Result<()> {
    let limit = model.config().max_position_embeddings.max(1);
    for (i, p) in prompts.iter().enumerate() {
        // The last sampled token is never fed back, so it needs no position.
        let needed = p.len() + max_new_tokens.saturating_sub(1);
        if needed > limit {
            let fit = (limit + 1).saturating_sub(p.len());
            return Err(Error::Config(format!(
                "prompt {i} has {} tokens; with max_new_tokens (--max-new-tokens) = {max_new_tokens} it would run past the model's max_position_embeddings ({limit}); {}",
                p.len(),
                if fit > 0 {
                    format!("lower --max-new-tokens to at most {fit}, or shorten the prompt")
                } else {
                    "shorten the prompt".to_string()
                }
            )));
        }
    }
    Ok(())
}

/// Generates a continuation for every prompt (token ids) in one batch.
pub fn generate(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    config: &GenerationConfig,
) -> Result<Vec<Generation>> {
    config.sampling.validate()?;
    if prompts.iter().any(Vec::is_empty) {
        return Err(Error::Config("cannot generate from an empty prompt".into()));
    }
    let b = prompts.len();
    if b == 0 {
        return Ok(Vec::new());
    }
    if config.min_new_tokens > config.max_new_tokens {
        return Err(Error::Config(format!(
            "min_new_tokens ({}) is more than max_new_tokens ({})",
            config.min_new_tokens, config.max_new_tokens
        )));
    }
    check_positions(model, prompts, config.max_new_tokens)?;
    let device: &Device = model.device();
    let eos = eos_ids(model, tokenizer);
    let pad = tokenizer.pad_id();
    let width = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(b * width);
    let mut mask = Vec::with_capacity(b);
    for p in prompts {
        let padding = width - p.len();
        ids.extend(std::iter::repeat_n(pad, padding).chain(p.iter().copied()));
        mask.push([vec![0u32; padding], vec![1u32; p.len()]].concat());
    }
    let mut rngs: Vec<ChaCha8Rng> = (0..b)
        .map(|i| {
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
            rng.set_stream(i as u64);
            rng
        })
        .collect();
    // Room for every slot the batch will fill (the last sampled token is never fed back).
    let mut cache =
        model.new_cache_with_capacity(b, width + config.max_new_tokens.saturating_sub(1));
    let mut logits = model.forward_cached_last(
        &Tensor::from_vec(ids, (b, width), device)?,
        &mask,
        &mut cache,
    )?;
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut finished: Vec<Option<FinishReason>> = vec![None; b];
    let mut eos_tokens: Vec<Option<u32>> = vec![None; b];
    let mut texts = vec![String::new(); b];
    for step in 0..config.max_new_tokens {
        let mut last = logits.to_vec2::<f32>()?;
        // Each row draws from its own stream, so the rows can be sampled in parallel.
        let drawn: Vec<Option<u32>> = last
            .par_iter_mut()
            .zip(rngs.par_iter_mut())
            .zip(finished.par_iter())
            .map(|((row, rng), finished)| {
                if finished.is_some() || row.iter().any(|x| !x.is_finite()) {
                    return None;
                }
                if step < config.min_new_tokens {
                    for &id in &eos {
                        if let Some(x) = row.get_mut(id as usize) {
                            *x = f32::NEG_INFINITY;
                        }
                    }
                }
                Some(sample(row, &config.sampling, rng))
            })
            .collect();
        let mut next = Vec::with_capacity(b);
        let mut step_mask = Vec::with_capacity(b);
        for row in 0..b {
            if finished[row].is_some() {
                next.push(pad);
                step_mask.push(vec![0]);
                continue;
            }
            let Some(token) = drawn[row] else {
                return Err(Error::Numeric(format!(
                    "the model's logits for prompt {row} of this batch are NaN or infinite at new token {step}: its weights are broken (e.g. a diverged training run); check them with a finite-values scan or use an earlier checkpoint"
                )));
            };
            if eos.contains(&token) {
                finished[row] = Some(FinishReason::Eos);
                eos_tokens[row] = Some(token);
                next.push(pad);
                step_mask.push(vec![0]);
                continue;
            }
            out[row].push(token);
            if !config.stop_strings.is_empty() {
                let text = tokenizer.decode(&out[row], true)?;
                if let Some(cut) = config
                    .stop_strings
                    .iter()
                    .filter_map(|s| text.find(s.as_str()))
                    .min()
                {
                    texts[row] = text[..cut].to_string();
                    finished[row] = Some(FinishReason::StopString);
                }
            }
            next.push(token);
            step_mask.push(vec![1]);
        }
        if finished.iter().all(Option::is_some) || step + 1 == config.max_new_tokens {
            break;
        }
        logits = model.forward_cached_last(
            &Tensor::from_vec(next, (b, 1), device)?,
            &step_mask,
            &mut cache,
        )?;
    }
    (0..b)
        .map(|row| {
            let finish_reason = finished[row].unwrap_or(FinishReason::Length);
            let text = match finish_reason {
                FinishReason::StopString => std::mem::take(&mut texts[row]),
                _ => tokenizer.decode(&out[row], true)?,
            };
            Ok(Generation {
                tokens: std::mem::take(&mut out[row]),
                text,
                finish_reason,
                eos_token: eos_tokens[row],
            })
        })
        .collect()
}
