//! WPO weighting: down-weight off-policy pairs by how likely the current policy is to produce them.

use candle_core::Tensor;

use super::inputs::WpoLogWeights;
use crate::Result;

/// The per-pair WPO weight in TRL ≤ 0.28's form: `min(w(y_w)·w(y_l), 1) = min(exp(log w_w + log w_l), 1)`,
/// detached, `[B]`.
///
/// The loss multiplies each pair's **total** loss by it, after the RPO term has been added (TRL v0.23
/// `get_batch_loss_metrics`: `losses = (losses + rpo_alpha·nll) · policy_weights`). TRL 1.x dropped the
/// clamp and weights each loss term separately (the NLL unweighted); this crate keeps the legacy form.
/// Zhou et al. 2024, "WPO: enhancing RLHF with weighted preference optimization" (arXiv 2406.11827).
pub fn wpo_weights(log_weights: &WpoLogWeights) -> Result<Tensor> {
    let sum = (log_weights.chosen.detach() + log_weights.rejected.detach())?;
    Ok(sum.exp()?.minimum(1.0)?)
}
