//! On-policy preference pairs for the demo: several samples per prompt from the SFT model, ranked by
//! the rule judge; the best becomes `chosen` and the worst `rejected` (prompts whose best and worst
//! samples score within a minimum gap are skipped and counted). An optional label-noise rate swaps a seeded fraction of pairs, to test
//! the paper's robustness claim. Written as ordinary preference JSONL that `ganpo train` reads.

use std::path::Path;

use ganpo::generate::{GenerationConfig, SamplingConfig, generate};
use ganpo::model::CausalLm;
use ganpo::tokenize::Tokenizer;
use ganpo::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::sft::encode_example;
use super::task::TaskExample;
use crate::judge::Judge;

/// One preference record, in the chat-message layout of a Hugging Face preference dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreferenceRecord {
    /// `[{role: user, content}]`.
    pub prompt: Vec<ganpo::tokenize::Message>,
    /// `[{role: assistant, content}]`, the judge's preferred sample.
    pub chosen: Vec<ganpo::tokenize::Message>,
    /// `[{role: assistant, content}]`, the judge's least preferred sample.
    pub rejected: Vec<ganpo::tokenize::Message>,
    /// Judge score of `chosen` (before any label flip).
    pub score_chosen: f64,
    /// Judge score of `rejected`.
    pub score_rejected: f64,
}

/// How pairs are built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairConfig {
    /// Samples per prompt.
    pub samples: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Most new tokens per sample.
    pub max_new_tokens: usize,
    /// Smallest judge-score gap between the best and the worst sample; prompts below it are
    /// skipped (counted with the ties).
    pub min_gap: f64,
    /// Fraction of pairs whose labels are swapped.
    pub label_noise: f64,
    /// Seed of sampling and noise.
    pub seed: u64,
}

/// What building pairs produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairs {
    /// The records.
    pub records: Vec<PreferenceRecord>,
    /// Prompts skipped because their best and worst samples scored within `min_gap`.
    pub ties_skipped: usize,
    /// Pairs whose labels were swapped.
    pub flipped: usize,
}

/// Samples, judges and pairs responses for every task prompt.
pub fn build_pairs(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    judge: &dyn Judge,
    tasks: &[TaskExample],
    config: PairConfig,
) -> Result<Pairs> {
    if config.samples < 2 {
        return Err(Error::Config(
            "preference pairs need at least 2 samples per prompt".into(),
        ));
    }
    let mut noise = ChaCha8Rng::seed_from_u64(config.seed ^ 0x006e_6f69_7365);
    let (mut records, mut ties_skipped, mut flipped) = (Vec::new(), 0, 0);
    for (i, chunk) in tasks.chunks(8).enumerate() {
        let prompts: Vec<Vec<u32>> = chunk
            .iter()
            .map(|t| encode_example(tokenizer, t).map(|(ids, n)| ids[..n].to_vec()))
            .collect::<Result<_>>()?;
        // Every row has its own random stream, so the repeats of a prompt give different samples.
        let repeated: Vec<Vec<u32>> = prompts
            .iter()
            .flat_map(|p| std::iter::repeat_n(p.clone(), config.samples))
            .collect();
        let decoding = GenerationConfig {
            max_new_tokens: config.max_new_tokens,
            min_new_tokens: 0,
            sampling: SamplingConfig {
                temperature: config.temperature,
                top_k: None,
                top_p: None,
            },
            seed: config.seed.wrapping_add(i as u64),
            stop_strings: Vec::new(),
        };
        let outs = generate(model, tokenizer, &repeated, &decoding)?;
        for (j, task) in chunk.iter().enumerate() {
            let mut scored: Vec<(f64, &str)> = outs[j * config.samples..(j + 1) * config.samples]
                .iter()
                .map(|o| (judge.score(&task.prompt, &o.text).score, o.text.as_str()))
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            let (best, worst) = (scored[0], scored[scored.len() - 1]);
            if best.0 - worst.0 < config.min_gap.max(1e-9) || best.1 == worst.1 {
                ties_skipped += 1;
                continue;
            }
            let (mut chosen, mut rejected) = (best, worst);
            if noise.random::<f64>() < config.label_noise {
                std::mem::swap(&mut chosen, &mut rejected);
                flipped += 1;
            }
            let msg = |role: &str, text: &str| vec![ganpo::tokenize::Message::new(role, text)];
            records.push(PreferenceRecord {
                prompt: msg("user", &task.prompt),
                chosen: msg("assistant", chosen.1),
                rejected: msg("assistant", rejected.1),
                score_chosen: chosen.0,
                score_rejected: rejected.0,
            });
        }
    }
    Ok(Pairs {
        records,
        ties_skipped,
        flipped,
    })
}

/// Writes records as JSONL (atomically: complete or absent).
pub fn write_jsonl(records: &[PreferenceRecord], path: &Path) -> Result<()> {
    let mut text = String::new();
    for r in records {
        let line = serde_json::to_string(r).map_err(|e| {
            Error::Config(format!("serializing a pair for {}: {e}", path.display()))
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    ganpo::train::checkpoint_dir::write_file_atomically(path, text.as_bytes())
}
