//! The demo's pre-registered comparisons, each a paired bootstrap interval over prompts and seeds
//! ([`super::stats`]) read into a verdict by a threshold fixed here, before any result is seen:
//!
//! * **base methods** (gate, not a claim): X vs SFT head to head at T = 0 and 0.7, X ∈ {DPO,
//!   SimPO}; the benchmark can only speak about GANPO when these are above ½;
//! * **claim 1**: X + GANPO vs X head to head (1 win, ½ tie, 0 loss per prompt) at T = 0 and 0.7,
//!   above ½;
//! * **claim 2** ("without longer answers"): X + GANPO's answer length minus X's at T ∈ {0, 0.7},
//!   below +5 % of X's mean length;
//! * **claim 3** ("more robust under distributional shift"): at T ≥ 1.5, X + GANPO's score minus
//!   X's above 0, and its structure-validity rate minus X's above 0 (the run's label noise is part
//!   of the line, so runs with `--label-noise` give the noisy-label verdicts);
//! * **claim 4** ("minor overhead"): X + GANPO's training time and peak memory over X's, per seed,
//!   below 1.25.
//!
//! Every value behind a verdict is in `per_prompt.json` (scores, validity, lengths) or
//! `results.json` (times, memory), so each interval can be recomputed.

use ganpo::Result;
use serde::Serialize;

use super::evaluate::PerPrompt;
use super::run::DemoResults;
use super::stats::{Interval, RESAMPLES, Verdict, paired_bootstrap};
use crate::judge::head_to_head;

/// One verdict line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimLine {
    /// `base`, `1`, `2`, `3` or `4`.
    pub claim: String,
    /// What is compared, in words.
    pub comparison: String,
    /// The estimate and its 95% interval.
    pub interval: Interval,
    /// The pre-registered threshold.
    pub threshold: f64,
    /// Whether the claim predicts the statistic above (true) or below the threshold.
    pub above: bool,
    /// Read from the interval alone.
    pub verdict: Verdict,
}

/// Each seed's per-prompt results of `arm` at temperature index `t`, in seed order.
fn by_seed<'a>(r: &'a DemoResults, arm: &str, t: usize) -> Vec<&'a PerPrompt> {
    let mut runs: Vec<_> = r.arms.iter().filter(|a| a.arm == arm).collect();
    runs.sort_by_key(|a| a.seed);
    runs.iter().filter_map(|a| a.per_prompt.get(t)).collect()
}

/// `f(a, b)` per prompt for arm `a` against arm `b` (or the SFT model), per seed, pooled over
/// the temperature indices `temps` (each (temperature, prompt) is one unit).
fn paired(
    r: &DemoResults,
    a: &str,
    b: Option<&str>,
    temps: &[usize],
    f: &dyn Fn(&PerPrompt, &PerPrompt, usize) -> f64,
) -> Vec<Vec<f64>> {
    let seeds = r.config.seeds;
    let mut values = vec![Vec::new(); seeds];
    for &t in temps {
        // Each arm's per-seed lists at this temperature, looked up once.
        let pa = by_seed(r, a, t);
        let pb = match b {
            Some(b) => by_seed(r, b, t),
            None => vec![&r.sft_per_prompt[t]; seeds],
        };
        for ((row, pa), pb) in values.iter_mut().zip(pa).zip(pb) {
            row.extend((0..pa.scores.len()).map(|p| f(pa, pb, p)));
        }
    }
    values
}

fn temperature_index(r: &DemoResults, pred: impl Fn(f64) -> bool) -> Vec<usize> {
    r.config
        .temperatures
        .iter()
        .enumerate()
        .filter(|(_, t)| pred(**t))
        .map(|(i, _)| i)
        .collect()
}

fn line(
    claim: &str,
    comparison: String,
    values: &[Vec<f64>],
    threshold: f64,
    above: bool,
) -> Result<ClaimLine> {
    let interval = paired_bootstrap(values, RESAMPLES, 0x0067_616e_706f)?;
    Ok(ClaimLine {
        claim: claim.into(),
        comparison,
        interval,
        threshold,
        above,
        verdict: Verdict::read(&interval, threshold, above),
    })
}

/// Every pre-registered comparison this run measured (a temperature it did not evaluate drops
/// the lines that need it).
pub fn claims(r: &DemoResults) -> Result<Vec<ClaimLine>> {
    let mut out = Vec::new();
    // A comparison needs its arms on every seed (`--arms` may leave some out).
    let have = |arm: &str| r.arms.iter().filter(|x| x.arm == arm).count() == r.config.seeds;
    let noise = r.config.label_noise;
    let win = |a: &PerPrompt, b: &PerPrompt, p: usize| head_to_head(a.scores[p], b.scores[p]);
    for base in ["dpo", "simpo"].into_iter().filter(|b| have(b)) {
        for t in [0.0, 0.7] {
            let idx = temperature_index(r, |x| (x - t).abs() < 1e-9);
            if !idx.is_empty() {
                let v = paired(r, base, None, &idx, &win);
                out.push(line(
                    "base",
                    format!("{base} vs SFT, win rate at T = {t}"),
                    &v,
                    0.5,
                    true,
                )?);
            }
        }
    }
    for base in ["dpo", "simpo"] {
        let g = format!("{base}+ganpo");
        if !have(base) || !have(&g) {
            continue;
        }
        for t in [0.0, 0.7] {
            let idx = temperature_index(r, |x| (x - t).abs() < 1e-9);
            if !idx.is_empty() {
                let v = paired(r, &g, Some(base), &idx, &win);
                out.push(line(
                    "1",
                    format!("{g} vs {base}, win rate at T = {t}"),
                    &v,
                    0.5,
                    true,
                )?);
            }
        }
        let low = temperature_index(r, |x| x < 1.0);
        if !low.is_empty() {
            let len =
                |a: &PerPrompt, b: &PerPrompt, p: usize| a.lengths[p] as f64 - b.lengths[p] as f64;
            let base_len: Vec<Vec<f64>> =
                paired(r, base, None, &low, &|a, _, p| a.lengths[p] as f64);
            let mean_len = base_len.iter().flatten().sum::<f64>()
                / base_len.iter().flatten().count().max(1) as f64;
            let v = paired(r, &g, Some(base), &low, &len);
            out.push(line(
                "2",
                format!("{g} minus {base}, answer length (tokens) at T < 1, against +5% of {base}'s {mean_len:.1}"),
                &v,
                0.05 * mean_len,
                false,
            )?);
        }
        let high = temperature_index(r, |x| x >= 1.5);
        if !high.is_empty() {
            let score = |a: &PerPrompt, b: &PerPrompt, p: usize| a.scores[p] - b.scores[p];
            let valid = |a: &PerPrompt, b: &PerPrompt, p: usize| {
                f64::from(u8::from(a.structure_valid[p]))
                    - f64::from(u8::from(b.structure_valid[p]))
            };
            let v = paired(r, &g, Some(base), &high, &score);
            out.push(line(
                "3",
                format!("{g} minus {base}, judge score at T ≥ 1.5, label noise {noise}"),
                &v,
                0.0,
                true,
            )?);
            let v = paired(r, &g, Some(base), &high, &valid);
            out.push(line(
                "3",
                format!("{g} minus {base}, structure-valid rate at T ≥ 1.5, label noise {noise}"),
                &v,
                0.0,
                true,
            )?);
        }
        for (what, get) in [
            (
                "training time",
                (|a: &super::run::ArmResult| Some(a.train_seconds))
                    as fn(&super::run::ArmResult) -> Option<f64>,
            ),
            ("peak RSS", |a: &super::run::ArmResult| a.peak_rss_mib),
        ] {
            let ratio: Option<Vec<Vec<f64>>> = (0..r.config.seeds as u64)
                .map(|s| {
                    let of = |arm: &str| {
                        r.arms
                            .iter()
                            .find(|a| a.arm == arm && a.seed == s)
                            .and_then(get)
                    };
                    Some(vec![of(&g)? / of(base)?.max(1e-9)])
                })
                .collect();
            if let Some(v) = ratio {
                out.push(line(
                    "4",
                    format!("{g} over {base}, {what} ratio"),
                    &v,
                    1.25,
                    false,
                )?);
            }
        }
    }
    Ok(out)
}
