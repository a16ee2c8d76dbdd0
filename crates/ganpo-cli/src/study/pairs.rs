//! The preference pairs: the reference samples K continuations of each prompt at T = 1, VADER
//! scores each continuation's compound sentiment, and the most positive and the most negative
//! become `chosen` and `rejected` when their compounds differ by at least the minimum gap.

use ganpo::Result;
use ganpo::model::CausalLm;
use ganpo::tokenize::Tokenizer;
use serde::{Deserialize, Serialize};

use super::config::PromptFormat;
use super::corpus::Prompt;
use super::progress::Bar;
use super::prompting::{PairRecord, pair_record};
use super::sampling::{Sampling, sample_rows};
use crate::judge::{Judge, SentimentJudge};

/// VADER's compound score of a text, in [−1, 1] (the study's reward).
pub fn compound(judge: &SentimentJudge, text: &str) -> f64 {
    judge
        .score("", text)
        .components
        .get("compound")
        .copied()
        .unwrap_or(0.0)
}

/// What one split's pair building saw, for the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    /// Prompts sampled.
    pub prompts: usize,
    /// Samples drawn (prompts × K).
    pub samples: usize,
    /// Pairs kept.
    pub pairs: usize,
    /// Prompts whose best and worst sample differ by less than the gap (or are the same text).
    pub below_gap: usize,
    /// Mean VADER compound of all samples.
    pub compound_mean: f64,
    /// Standard deviation of all samples' compound (how varied the reference's sentiment is).
    pub compound_std: f64,
    /// Mean over prompts of (max − min) compound among its K samples.
    pub mean_range: f64,
    /// Fraction of samples with compound exactly 0 (no sentiment word).
    pub neutral_fraction: f64,
    /// Mean compound of chosen and of rejected.
    pub chosen_mean: f64,
    /// Mean compound of rejected.
    pub rejected_mean: f64,
}

/// Samples, scores and pairs continuations of `prompts` (`ids` their token ids).
#[allow(clippy::too_many_arguments)]
pub fn build_pairs(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    format: PromptFormat,
    prompts: &[Prompt],
    ids: &[Vec<u32>],
    k: usize,
    min_gap: f64,
    sampling: Sampling,
    bar: &mut Bar,
) -> Result<(Vec<PairRecord>, PairStats)> {
    let judge = SentimentJudge::default();
    let rows: Vec<Vec<u32>> = ids
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.clone(), k))
        .collect();
    let gens = sample_rows(model, tokenizer, &rows, sampling, bar, 0)?;
    let mut stats = PairStats {
        prompts: prompts.len(),
        samples: gens.len(),
        ..PairStats::default()
    };
    let (mut all, mut records) = (Vec::new(), Vec::new());
    for (prompt, samples) in prompts.iter().zip(gens.chunks(k)) {
        let mut scored: Vec<(f64, &str)> = samples
            .iter()
            .map(|g| (compound(&judge, &g.text), g.text.as_str()))
            .collect();
        all.extend(scored.iter().map(|s| s.0));
        // An empty continuation cannot be a completion of a record.
        scored.retain(|s| !s.1.trim().is_empty());
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (Some(&best), Some(&worst)) = (scored.first(), scored.last()) else {
            stats.below_gap += 1;
            continue;
        };
        stats.mean_range += best.0 - worst.0;
        // A gap of 0 keeps every prompt with two different samples (ties included: only for
        // exercising the pipeline on models without sentiment, such as the test fixtures).
        if (min_gap > 0.0 && best.0 - worst.0 < min_gap) || best.1 == worst.1 {
            stats.below_gap += 1;
            continue;
        }
        records.push(pair_record(
            format,
            &prompt.text,
            (best.1, best.0),
            (worst.1, worst.0),
            &prompt.file,
        ));
    }
    let n = all.len().max(1) as f64;
    stats.compound_mean = all.iter().sum::<f64>() / n;
    stats.compound_std = (all
        .iter()
        .map(|x| (x - stats.compound_mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    stats.neutral_fraction = all.iter().filter(|x| **x == 0.0).count() as f64 / n;
    stats.mean_range /= prompts.len().max(1) as f64;
    stats.pairs = records.len();
    let m = records.len().max(1) as f64;
    stats.chosen_mean = records.iter().map(|r| r.score_chosen).sum::<f64>() / m;
    stats.rejected_mean = records.iter().map(|r| r.score_rejected).sum::<f64>() / m;
    Ok((records, stats))
}
