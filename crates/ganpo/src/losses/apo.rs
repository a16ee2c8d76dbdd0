//! APO: anchored preference optimization, which fixes the direction each likelihood should move
//! (up or down) relative to the reference instead of only their difference.

use super::inputs::{LossInputs, LossOutput};
use super::numerics::sigmoid;
use crate::Result;

/// APO-zero (`apo_zero`), for chosen answers better than the model's own:
///
/// `L = [1 − σ(β Δ(y_w))] + σ(β Δ(y_l))`, summed log-probs (`1 − σ(z)` computed as `σ(−z)`).
/// Rewards `β·Δ(y)`.
///
/// D'Oosterlinck et al. 2024, "Anchored preference optimization and contrastive revisions"
/// (arXiv 2408.06266), eq. 7; TRL `loss_type="apo_zero"`.
pub fn apo_zero(inputs: &LossInputs, beta: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("apo_zero")?;
    let losses =
        (sigmoid(&r.chosen.affine(-beta, 0.0)?)? + sigmoid(&r.rejected.affine(beta, 0.0)?)?)?;
    r.output(losses, beta)
}

/// APO-down (`apo_down`), for when the model already beats the chosen answers:
///
/// `L = σ(β Δ(y_w)) + [1 − σ(β h)]`, summed log-probs. Rewards `β·Δ(y)`.
///
/// D'Oosterlinck et al. 2024 (arXiv 2408.06266), eq. 8; TRL `loss_type="apo_down"`.
pub fn apo_down(inputs: &LossInputs, beta: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("apo_down")?;
    let losses =
        (sigmoid(&r.chosen.affine(beta, 0.0)?)? + sigmoid(&r.margin.affine(-beta, 0.0)?)?)?;
    r.output(losses, beta)
}
