//! Paired bootstrap confidence intervals over prompts and seeds, and the verdict wording of the
//! demo's pre-registered claims.
//!
//! A paired comparison of two arms gives one value per (seed, prompt): a score difference, a
//! head-to-head outcome (1 win, ½ tie, 0 loss), a length difference. Its estimate is the mean of
//! all values; its 95% interval the 2.5th and 97.5th percentiles of that mean over resamples
//! that draw seeds and prompts independently with replacement (a two-way bootstrap: prompts are
//! shared across seeds, so both sources of variation are kept; with one seed only prompts vary).

use ganpo::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// A point estimate with its 95% bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Mean over every (seed, prompt) value.
    pub estimate: f64,
    /// 2.5th percentile of the resampled means.
    pub low: f64,
    /// 97.5th percentile of the resampled means.
    pub high: f64,
}

/// Resamples used for every interval (enough for stable 2.5% tails).
pub const RESAMPLES: usize = 4000;

/// The paired bootstrap of `values[seed][prompt]` (every seed the same number of prompts).
pub fn paired_bootstrap(values: &[Vec<f64>], resamples: usize, seed: u64) -> Result<Interval> {
    let seeds = values.len();
    let prompts = values.first().map_or(0, Vec::len);
    if seeds == 0 || prompts == 0 || values.iter().any(|v| v.len() != prompts) {
        return Err(Error::Config(format!(
            "a paired bootstrap needs the same non-zero number of prompts for every seed, got {:?}",
            values.iter().map(Vec::len).collect::<Vec<_>>()
        )));
    }
    let total: f64 = values.iter().flatten().sum();
    let estimate = total / (seeds * prompts) as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means = Vec::with_capacity(resamples);
    let mut picked_prompts = vec![0usize; prompts];
    for _ in 0..resamples {
        for p in picked_prompts.iter_mut() {
            *p = rng.random_range(0..prompts);
        }
        let mut sum = 0.0;
        for _ in 0..seeds {
            let row = &values[if seeds == 1 {
                0
            } else {
                rng.random_range(0..seeds)
            }];
            sum += picked_prompts.iter().map(|&p| row[p]).sum::<f64>();
        }
        means.push(sum / (seeds * prompts) as f64);
    }
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    Ok(Interval {
        estimate,
        low: at(0.025),
        high: at(0.975),
    })
}

/// A claim's verdict, read from its interval alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The whole interval lies on the side the claim predicts.
    Supported,
    /// The whole interval lies on the other side.
    NotSupported,
    /// The interval contains the threshold.
    Inconclusive,
}

impl Verdict {
    /// For a claim that the statistic is above `threshold` (`above = true`) or below it.
    pub fn read(interval: &Interval, threshold: f64, above: bool) -> Verdict {
        let (predicted, opposite) = if above {
            (interval.low > threshold, interval.high < threshold)
        } else {
            (interval.high < threshold, interval.low > threshold)
        };
        if predicted {
            Verdict::Supported
        } else if opposite {
            Verdict::NotSupported
        } else {
            Verdict::Inconclusive
        }
    }

    /// The report's word for it.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::NotSupported => "not supported",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}
