//! Latent diagnostics of a policy against its reference on the same sequences: the unbiased MMD²
//! between their mean-pooled last hidden states (median-heuristic bandwidth) and a fresh linear
//! probe's held-out accuracy. Both are 0 / 0.5 in expectation when the models coincide.

use serde::{Deserialize, Serialize};

use super::mmd::{median_sq_distance, mmd2_unbiased};
use super::preference::PooledLatents;
use super::probe::{ProbeConfig, ProbeResult, linear_probe};
use crate::Result;

/// The latent-space comparison of two models.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatentDiagnostics {
    /// Unbiased MMD² between the two sets of pooled latents.
    pub mmd2: f64,
    /// The Gaussian kernel's σ² (median pairwise squared distance over both sets).
    pub bandwidth_sq: f64,
    /// Pooled latents per model.
    pub sequences: usize,
    /// The linear probe.
    pub probe: ProbeResult,
}

/// Computes the MMD² and fits the probe on `latents`.
///
/// With identical models the two sets coincide and the unbiased estimate is
/// `2(k̄ − 1)/n ∈ [−2/n, 0]` (k̄ the mean off-diagonal kernel value), so `|MMD²| ≤ 2/n` then.
pub fn latent_diagnostics(
    latents: &PooledLatents,
    probe: &ProbeConfig,
) -> Result<LatentDiagnostics> {
    let bandwidth_sq = median_sq_distance(&latents.policy, &latents.reference);
    Ok(LatentDiagnostics {
        mmd2: mmd2_unbiased(&latents.policy, &latents.reference, bandwidth_sq)?,
        bandwidth_sq,
        sequences: latents.policy.len(),
        probe: linear_probe(&latents.policy, &latents.reference, &latents.groups, probe)?,
    })
}
