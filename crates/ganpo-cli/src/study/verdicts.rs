//! The verdict lines: each GANPO arm against its base loss (same loss and β, GANPO off) with a
//! paired bootstrap 95% interval over held-out prompts (and seeds), read as the demo reads its
//! claims (`crate::demo::stats`): on the frontier (reward at matched KL), on text quality at
//! T ≥ 1.5 (the reference's NLL of the text, repeated 4-grams), and on length.
//!
//! The frontier statistic is `r_G − f(KL_G)` at T = 1 (where the Monte-Carlo sequence KL is
//! unbiased): `f` is the base family's frontier, the piecewise-linear curve through the
//! reference (KL 0) and every base-family arm's (KL, reward), held flat beyond its ends. Every
//! resample redraws the prompts once for all arms, so the frontier and the GANPO point move
//! together.

use std::collections::BTreeMap;

use ganpo::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::config::StudyArm;
use super::evaluate::{Sample, TemperatureSamples};
use crate::demo::stats::{Interval, RESAMPLES, Verdict, paired_bootstrap};

/// Every evaluated model's samples: `samples[model][seed][temperature index]`; the reference is
/// `"reference"` with one seed.
pub type SampleTable = BTreeMap<String, Vec<Vec<TemperatureSamples>>>;

/// One verdict line.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictLine {
    /// The GANPO arm.
    pub arm: String,
    /// Its base arm (or family, for the frontier).
    pub base: String,
    /// What is claimed.
    pub claim: String,
    /// Temperature.
    pub temperature: f64,
    /// Estimate and 95% interval.
    pub interval: Interval,
    /// Supported / not supported / inconclusive.
    pub verdict: Verdict,
}

/// Piecewise-linear interpolation through `points` (sorted by x), flat beyond the ends.
fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    let (first, last) = (points[0], points[points.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            return if x1 > x0 {
                y0 + (y1 - y0) * (x - x0) / (x1 - x0)
            } else {
                y1
            };
        }
    }
    last.1
}

/// Per-prompt means over seeds of `f` for `model` at temperature index `t`.
fn per_prompt(
    table: &SampleTable,
    model: &str,
    t: usize,
    f: fn(&Sample) -> f64,
) -> Result<Vec<f64>> {
    let seeds = table
        .get(model)
        .ok_or_else(|| Error::Config(format!("no evaluation of {model}")))?;
    let n = seeds[0][t].samples.len();
    Ok((0..n)
        .map(|p| seeds.iter().map(|s| f(&s[t].samples[p])).sum::<f64>() / seeds.len() as f64)
        .collect())
}

/// The frontier statistic's bootstrap for `arm` against the base `family` arms at index `t`.
fn frontier(table: &SampleTable, arm: &str, family: &[String], t: usize) -> Result<Interval> {
    let reward = |m: &str| per_prompt(table, m, t, |s| s.reward);
    let kl = |m: &str| per_prompt(table, m, t, Sample::log_ratio);
    let reference = reward("reference")?;
    let base: Vec<(Vec<f64>, Vec<f64>)> = family
        .iter()
        .map(|m| Ok((kl(m)?, reward(m)?)))
        .collect::<Result<_>>()?;
    let (arm_kl, arm_reward) = (kl(arm)?, reward(arm)?);
    let n = reference.len();
    let statistic = |idx: &mut dyn Iterator<Item = usize>| {
        let idx: Vec<usize> = idx.collect();
        let mean = |v: &[f64]| idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64;
        let mut points = vec![(0.0, mean(&reference))];
        points.extend(base.iter().map(|(k, r)| (mean(k), mean(r))));
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        mean(&arm_reward) - interpolate(&points, mean(&arm_kl))
    };
    let estimate = statistic(&mut (0..n));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut draws: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let picks: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
            statistic(&mut picks.into_iter())
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((q * (RESAMPLES - 1) as f64).round() as usize).min(RESAMPLES - 1)];
    Ok(Interval {
        estimate,
        low: at(0.025),
        high: at(0.975),
    })
}

/// `values[seed][prompt]` of `f(arm) − f(base)` at index `t`.
fn differences(
    table: &SampleTable,
    arm: &str,
    base: &str,
    t: usize,
    f: fn(&Sample) -> f64,
) -> Result<Vec<Vec<f64>>> {
    let (a, b) = (
        table
            .get(arm)
            .ok_or_else(|| Error::Config(format!("no evaluation of {arm}")))?,
        table
            .get(base)
            .ok_or_else(|| Error::Config(format!("no evaluation of {base}")))?,
    );
    Ok(a.iter()
        .zip(b)
        .map(|(sa, sb)| {
            sa[t]
                .samples
                .iter()
                .zip(&sb[t].samples)
                .map(|(x, y)| f(x) - f(y))
                .collect()
        })
        .collect())
}

/// Every verdict line of the study, for the GANPO arms among `arms` whose base was evaluated.
pub fn verdicts(
    table: &SampleTable,
    arms: &[StudyArm],
    temperatures: &[f64],
) -> Result<Vec<VerdictLine>> {
    let index = |want: f64| temperatures.iter().position(|t| (t - want).abs() < 1e-9);
    // The frontier at T = 1 (else the lowest temperature above 0.9, else the first).
    let t1 = index(1.0).unwrap_or(0);
    let mut lines = Vec::new();
    for arm in arms
        .iter()
        .filter(|a| a.lambda.is_some() && table.contains_key(&a.name))
    {
        let base = arm.base_name();
        if !table.contains_key(&base) {
            continue;
        }
        let family: Vec<String> = arms
            .iter()
            .filter(|a| a.lambda.is_none() && a.loss == arm.loss && table.contains_key(&a.name))
            .map(|a| a.name.clone())
            .collect();
        let mut push = |claim: &str, base: &str, t: usize, interval: Interval, above: bool| {
            lines.push(VerdictLine {
                arm: arm.name.clone(),
                base: base.to_string(),
                claim: claim.to_string(),
                temperature: temperatures[t],
                interval,
                verdict: Verdict::read(&interval, 0.0, above),
            });
        };
        let fr = frontier(table, &arm.name, &family, t1)?;
        push(
            "reward above the base loss's reward–KL frontier at its KL",
            &format!("{} frontier", arm.family()),
            t1,
            fr,
            true,
        );
        for t in (0..temperatures.len()).filter(|&t| temperatures[t] >= 1.5) {
            let d = differences(table, &arm.name, &base, t, Sample::ref_nll)?;
            push(
                "lower reference NLL per token (more natural text)",
                &base,
                t,
                paired_bootstrap(&d, RESAMPLES, 11)?,
                false,
            );
            let d = differences(table, &arm.name, &base, t, |s| s.repetition4.unwrap_or(0.0))?;
            push(
                "fewer repeated 4-grams",
                &base,
                t,
                paired_bootstrap(&d, RESAMPLES, 13)?,
                false,
            );
        }
        let d = differences(table, &arm.name, &base, t1, |s| s.length as f64)?;
        push(
            "shorter samples (less length exploitation)",
            &base,
            t1,
            paired_bootstrap(&d, RESAMPLES, 17)?,
            false,
        );
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_is_linear_inside_and_flat_outside() {
        let pts = [(0.0, 0.0), (1.0, 1.0), (3.0, 2.0)];
        assert_eq!(interpolate(&pts, -1.0), 0.0);
        assert!((interpolate(&pts, 0.5) - 0.5).abs() < 1e-12);
        assert!((interpolate(&pts, 2.0) - 1.5).abs() < 1e-12);
        assert_eq!(interpolate(&pts, 10.0), 2.0);
    }
}
