//! A fresh linear probe: can a logistic regression tell the policy's pooled latents from the
//! reference's? Held-out accuracy near 0.5 means the two are linearly indistinguishable; near 1,
//! the policy's representations have drifted in a linearly visible direction. Unlike the training
//! discriminators, the probe never saw training, so it is an independent check.
//!
//! Fitting: features standardized with the training half's mean and standard deviation, then
//! full-batch gradient descent on the mean logistic loss plus `l2/2 · ‖w‖²`, from zero weights.
//! The split is by pair (both models' latents of one pair land on the same side), seeded.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Probe training settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Gradient-descent steps.
    pub steps: usize,
    /// Step size (on standardized features).
    pub learning_rate: f64,
    /// L2 penalty on the weights (not the bias).
    pub l2: f64,
    /// Seed of the train/test split.
    pub seed: u64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            steps: 500,
            learning_rate: 0.5,
            l2: 1e-3,
            seed: 0,
        }
    }
}

/// A fitted probe's accuracies (policy = class 1, reference = class 0; `p > 0.5` predicts 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Accuracy on the held-out pairs' latents.
    pub test_accuracy: f64,
    /// Accuracy on the training pairs' latents.
    pub train_accuracy: f64,
    /// Latents (of both models) in the training half.
    pub train_size: usize,
    /// Latents (of both models) in the held-out half.
    pub test_size: usize,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

struct Linear {
    w: Vec<f64>,
    b: f64,
}

impl Linear {
    fn logit(&self, x: &[f64]) -> f64 {
        self.b + self.w.iter().zip(x).map(|(w, x)| w * x).sum::<f64>()
    }

    fn accuracy(&self, xs: &[Vec<f64>], ys: &[f64]) -> f64 {
        let right = xs
            .iter()
            .zip(ys)
            .filter(|(x, y)| (sigmoid(self.logit(x)) > 0.5) == (**y > 0.5))
            .count();
        right as f64 / xs.len().max(1) as f64
    }
}

fn fit(xs: &[Vec<f64>], ys: &[f64], config: &ProbeConfig) -> Linear {
    let d = xs.first().map_or(0, Vec::len);
    let n = xs.len() as f64;
    let mut model = Linear {
        w: vec![0.0; d],
        b: 0.0,
    };
    for _ in 0..config.steps {
        let mut gw = vec![0.0; d];
        let mut gb = 0.0;
        for (x, y) in xs.iter().zip(ys) {
            let r = sigmoid(model.logit(x)) - y;
            gb += r;
            for (g, xi) in gw.iter_mut().zip(x) {
                *g += r * xi;
            }
        }
        for (w, g) in model.w.iter_mut().zip(&gw) {
            *w -= config.learning_rate * (g / n + config.l2 * *w);
        }
        model.b -= config.learning_rate * gb / n;
    }
    model
}

/// Standardizes `rows` in place with the mean and standard deviation of `fit_rows` (a constant
/// feature becomes 0).
fn standardize(fit_rows: &[Vec<f64>], rows: &mut [Vec<f64>]) {
    let d = fit_rows.first().map_or(0, Vec::len);
    let n = fit_rows.len().max(1) as f64;
    for j in 0..d {
        let mean = fit_rows.iter().map(|r| r[j]).sum::<f64>() / n;
        let var = fit_rows.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / n;
        let scale = if var > 1e-24 { 1.0 / var.sqrt() } else { 0.0 };
        for r in rows.iter_mut() {
            r[j] = (r[j] - mean) * scale;
        }
    }
}

/// Fits a probe separating `policy` latents from `reference` latents and reports its held-out
/// accuracy. `policy[i]` and `reference[i]` are the two models' latents of the same sequence and
/// `groups[i]` names the pair it belongs to; half the pairs (rounded down, at least one) train the
/// probe, the rest test it. Needs at least two pairs.
pub fn linear_probe(
    policy: &[Vec<f64>],
    reference: &[Vec<f64>],
    groups: &[usize],
    config: &ProbeConfig,
) -> Result<ProbeResult> {
    if policy.len() != reference.len() || policy.len() != groups.len() {
        return Err(Error::Config(format!(
            "linear_probe: {} policy latents, {} reference latents and {} group ids must match",
            policy.len(),
            reference.len(),
            groups.len()
        )));
    }
    let d = policy.first().map_or(0, Vec::len);
    if policy.iter().chain(reference).any(|v| v.len() != d) {
        return Err(Error::Config(
            "linear_probe: latents have different lengths".into(),
        ));
    }
    let mut ids: Vec<usize> = groups.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() < 2 {
        return Err(Error::Config(format!(
            "linear_probe needs at least two pairs (one to fit, one to test), got {}",
            ids.len()
        )));
    }
    ids.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed));
    let train_groups: std::collections::BTreeSet<usize> =
        ids[..(ids.len() / 2).max(1)].iter().copied().collect();
    let (mut train_x, mut train_y, mut test_x, mut test_y) = (vec![], vec![], vec![], vec![]);
    for ((p, r), g) in policy.iter().zip(reference).zip(groups) {
        let (xs, ys) = if train_groups.contains(g) {
            (&mut train_x, &mut train_y)
        } else {
            (&mut test_x, &mut test_y)
        };
        xs.push(p.clone());
        ys.push(1.0);
        xs.push(r.clone());
        ys.push(0.0);
    }
    let fit_rows = train_x.clone();
    standardize(&fit_rows, &mut train_x);
    standardize(&fit_rows, &mut test_x);
    let model = fit(&train_x, &train_y, config);
    Ok(ProbeResult {
        test_accuracy: model.accuracy(&test_x, &test_y),
        train_accuracy: model.accuracy(&train_x, &train_y),
        train_size: train_x.len(),
        test_size: test_x.len(),
    })
}
