//! AOT: alignment via optimal transport, a distributional preference loss that compares **sorted**
//! log-ratios across the batch (first-order stochastic dominance of chosen over rejected).

use candle_core::Tensor;

use super::dpo::smoothed_logistic;
use super::inputs::{LossInputs, LossOutput};
use crate::Result;

/// `t` sorted ascending along its only dimension; differentiable (an index-select of `t`).
fn sorted(t: &Tensor) -> Result<Tensor> {
    let order = t.detach().contiguous()?.arg_sort_last_dim(true)?;
    Ok(t.index_select(&order, 0)?)
}

/// AOT for paired data (`aot`):
///
/// `u = sort(S_θ(y_w) − S_θ(y_l))`, `v = sort(S_ref(y_w) − S_ref(y_l))`, `d = u − v`,
/// `L_k = −(1−ε)·log σ(β d_k) − ε·log σ(−β d_k)` over summed log-probs. Rewards `β·Δ(y)` per pair.
///
/// Element k of the losses belongs to the k-th **rank**, not to pair k, and the result depends on
/// the batch it is sorted over (the per-device micro-batch in TRL), so it needs large batches and does
/// not combine with per-example weighting (WPO). Melnyk et al. 2024, "Distributional preference
/// alignment of LLMs via optimal transport" (arXiv 2406.05882); TRL `loss_type="aot"`.
pub fn aot(inputs: &LossInputs, beta: f64, label_smoothing: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("aot")?;
    let (ref_chosen, ref_rejected) = x.reference("aot")?;
    let policy = (&x.policy_chosen_logps - &x.policy_rejected_logps)?;
    let reference = (ref_chosen - ref_rejected)?;
    let d = (sorted(&policy)? - sorted(&reference)?)?;
    r.output(
        smoothed_logistic(&d.affine(beta, 0.0)?, label_smoothing)?,
        beta,
    )
}

/// AOT for unpaired data (`aot_unpaired`, TRL ≤ 0.28 `aot_pair`):
///
/// `d = sort(Δ(y_w)) − sort(Δ(y_l))`, same smoothed logistic loss as [`aot`] on `β d`; rewards
/// `β·Δ(y)`. Losses are per rank, as in [`aot`]. Melnyk et al. 2024 (arXiv 2406.05882).
pub fn aot_unpaired(inputs: &LossInputs, beta: f64, label_smoothing: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("aot_unpaired")?;
    let d = (sorted(&r.chosen)? - sorted(&r.rejected)?)?;
    r.output(
        smoothed_logistic(&d.affine(beta, 0.0)?, label_smoothing)?,
        beta,
    )
}
