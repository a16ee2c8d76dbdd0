//! The NLL (SFT) term on chosen completions, used by RPO (`rpo_alpha`), CPO (`cpo_alpha`), SimPO
//! (`sft_weight`) and ORPO.

use candle_core::Tensor;

use super::inputs::LossInputs;
use crate::Result;

/// Token-mean cross-entropy of the chosen completions over the whole batch:
///
/// `NLL = −Σ_i S_θ(y_w,i) / Σ_i n(y_w,i)`, a scalar (0-dim) tensor.
///
/// This is what `F.cross_entropy(..., reduction="mean")` over all chosen completion tokens gives, as
/// TRL's `nll_loss`, CPO's and SimPO's SFT terms compute it: long completions weigh more than short
/// ones. It uses the plain summed log-probs (never LD-DPO's re-weighted ones). Two deliberate
/// differences: TRL ≤ 0.28's DPO trainer masks with `ignore_index=0`, so a completion token with id 0
/// is skipped there; TRL's ORPO also counts prompt tokens. Here every completion token counts.
pub fn nll(inputs: &LossInputs) -> Result<Tensor> {
    let x = inputs.checked()?;
    let tokens = x.chosen_counts.sum_all()?.clamp(1.0, f64::INFINITY)?;
    Ok(x.policy_chosen_logps.sum_all()?.neg()?.div(&tokens)?)
}

/// `nll(inputs)` repeated for every pair, `[B]`, so it can be added to per-example losses: their mean
/// then gains exactly `weight · NLL`.
pub(crate) fn nll_per_example(inputs: &LossInputs, weight: f64) -> Result<Tensor> {
    let b = inputs.batch_size()?;
    Ok(nll(inputs)?.affine(weight, 0.0)?.broadcast_as(b)?)
}
