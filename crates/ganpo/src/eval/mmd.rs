//! Maximum mean discrepancy between two sets of vectors (e.g. mean-pooled last hidden states of
//! the policy and of the reference), with a Gaussian kernel whose bandwidth is the median pairwise
//! distance of the pooled set (the "median heuristic", Gretton et al. 2012). A divergence estimate
//! that does not reuse the training discriminators.
//!
//! `MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(x_i,x_j) + 1/(n(n−1)) Σ_{i≠j} k(y_i,y_j) − 2/(mn) Σ_{i,j} k(x_i,y_j)`

use crate::{Error, Result};

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The median of the pairwise squared distances over `x ∪ y` (distinct pairs).
pub fn median_sq_distance(x: &[Vec<f64>], y: &[Vec<f64>]) -> f64 {
    let all: Vec<&Vec<f64>> = x.iter().chain(y).collect();
    let mut d: Vec<f64> = Vec::with_capacity(all.len() * all.len() / 2);
    for i in 0..all.len() {
        for j in i + 1..all.len() {
            d.push(sq_dist(all[i], all[j]));
        }
    }
    if d.is_empty() {
        return 1.0;
    }
    d.sort_by(f64::total_cmp);
    let n = d.len();
    if n % 2 == 1 {
        d[n / 2]
    } else {
        0.5 * (d[n / 2 - 1] + d[n / 2])
    }
}

/// Unbiased MMD² with kernel `k(a, b) = exp(−‖a − b‖² / (2 σ²))`, `σ² = bandwidth_sq`
/// (use [`median_sq_distance`] when unsure). Needs at least two vectors per set.
pub fn mmd2_unbiased(x: &[Vec<f64>], y: &[Vec<f64>], bandwidth_sq: f64) -> Result<f64> {
    let (m, n) = (x.len(), y.len());
    if m < 2 || n < 2 {
        return Err(Error::Config(
            "MMD needs at least two vectors in each set".into(),
        ));
    }
    if x.iter().chain(y).any(|v| v.len() != x[0].len()) {
        return Err(Error::Config("MMD: vectors have different lengths".into()));
    }
    let k = |a: &[f64], b: &[f64]| (-sq_dist(a, b) / (2.0 * bandwidth_sq.max(1e-12))).exp();
    let within = |s: &[Vec<f64>]| {
        let mut total = 0.0;
        for i in 0..s.len() {
            for j in 0..s.len() {
                if i != j {
                    total += k(&s[i], &s[j]);
                }
            }
        }
        total / (s.len() * (s.len() - 1)) as f64
    };
    let mut cross = 0.0;
    for a in x {
        for b in y {
            cross += k(a, b);
        }
    }
    Ok(within(x) + within(y) - 2.0 * cross / (m * n) as f64)
}
