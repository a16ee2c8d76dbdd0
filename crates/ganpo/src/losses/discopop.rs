//! DiscoPOP (log-ratio modulated loss): an LLM-discovered blend of the logistic and exponential losses.

use super::inputs::{LossInputs, LossOutput};
use super::numerics::{log_sigmoid, sigmoid};
use crate::Result;

/// DiscoPOP (`discopop`):
///
/// `ρ = β h` (summed log-probs), `m = σ(ρ/τ)`, `L = (1 − m)·(−log σ(ρ)) + m·e^{−ρ}`. Rewards `β·Δ(y)`.
///
/// The exponential term is computed as `exp(log σ(ρ/τ) − ρ)`: TRL's `σ(ρ/τ)·exp(−ρ)` overflows to
/// `0·∞ = NaN` in f32 once ρ < −88, while the two agree wherever TRL is finite.
///
/// Lu et al. 2024, "Discovering preference optimization algorithms with and for large language models"
/// (arXiv 2406.08414), eq. 5; TRL `loss_type="discopop"`, τ = `discopop_tau` = 0.05.
pub fn discopop(inputs: &LossInputs, beta: f64, discopop_tau: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("discopop")?;
    let rho = r.margin.affine(beta, 0.0)?;
    let scaled = rho.affine(1.0 / discopop_tau, 0.0)?;
    let logistic = log_sigmoid(&rho)?.neg()?.mul(&sigmoid(&scaled.neg()?)?)?;
    let exponential = (log_sigmoid(&scaled)? - &rho)?.exp()?;
    r.output((logistic + exponential)?, beta)
}
