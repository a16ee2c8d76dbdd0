//! Means with standard errors of every per-sample measure, per (model, temperature), pooled over
//! seeds: the rows of the report's tables and the points of its figures.

use serde::Serialize;

use super::evaluate::{Sample, TemperatureSamples};
use crate::judge::head_to_head;

/// A mean and its standard error (`sd / √n`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Standard error of the mean.
    pub se: f64,
    /// Values averaged.
    pub n: usize,
}

impl Stat {
    /// The mean and standard error of `values` (NaN for none).
    pub fn of(values: &[f64]) -> Stat {
        let n = values.len();
        if n == 0 {
            return Stat {
                mean: f64::NAN,
                se: f64::NAN,
                n,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Stat {
            mean,
            se: (var / n as f64).sqrt(),
            n,
        }
    }

    /// `mean ± se` with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        format!("{:.digits$} ± {:.digits$}", self.mean, self.se)
    }
}

/// One (model, temperature) row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    /// Model: `reference` or an arm's name.
    pub model: String,
    /// Temperature.
    pub temperature: f64,
    /// VADER compound.
    pub reward: Stat,
    /// Win rate against the reference's sample of the same prompt (ties ½).
    pub win_rate: Stat,
    /// Monte-Carlo sequence KL, `mean [log π(y) − log π_ref(y)]` (unbiased at T = 1 only).
    pub sequence_kl: Stat,
    /// Exact per-token KL along the samples.
    pub token_kl: Stat,
    /// Length in tokens.
    pub length: Stat,
    /// The reference's NLL per token of the samples.
    pub ref_nll: Stat,
    /// Distinct-2 of the samples' words.
    pub distinct2: Stat,
    /// Repeated word 4-grams.
    pub repetition4: Stat,
    /// Fraction that ended on EOS.
    pub eos_rate: f64,
}

/// The row of `model` at one temperature from its samples of every seed (`seeds[s]`) and the
/// reference's samples at that temperature.
pub fn summarize(
    model: &str,
    seeds: &[&TemperatureSamples],
    reference: &TemperatureSamples,
) -> SummaryRow {
    let all: Vec<&Sample> = seeds.iter().flat_map(|t| &t.samples).collect();
    let pick = |f: &dyn Fn(&Sample) -> Option<f64>| -> Stat {
        Stat::of(&all.iter().filter_map(|s| f(s)).collect::<Vec<_>>())
    };
    let wins: Vec<f64> = seeds
        .iter()
        .flat_map(|t| t.samples.iter().zip(&reference.samples))
        .map(|(p, r)| head_to_head(p.reward, r.reward))
        .collect();
    SummaryRow {
        model: model.to_string(),
        temperature: reference.temperature,
        reward: pick(&|s| Some(s.reward)),
        win_rate: Stat::of(&wins),
        sequence_kl: pick(&|s| Some(s.log_ratio())),
        token_kl: pick(&|s| Some(s.token_kl())),
        length: pick(&|s| Some(s.length as f64)),
        ref_nll: pick(&|s| Some(s.ref_nll())),
        distinct2: pick(&|s| s.distinct2),
        repetition4: pick(&|s| s.repetition4),
        eos_rate: all.iter().filter(|s| s.eos).count() as f64 / all.len().max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_error_of_a_known_sample() {
        let s = Stat::of(&[1.0, 2.0, 3.0, 4.0]);
        assert!((s.mean - 2.5).abs() < 1e-12);
        // sd = sqrt(5/3), se = sd / 2
        assert!((s.se - (5.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-12);
        assert!(Stat::of(&[]).mean.is_nan());
    }
}
