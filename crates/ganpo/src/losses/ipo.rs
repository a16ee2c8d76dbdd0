//! Squared-regression preference losses: IPO (length-normalized, as TRL) and SPPO with hard labels.

use super::inputs::{LossInputs, LossOutput};
use crate::Result;

/// IPO (`ipo`): regress the margin of **average** log-ratios onto 1/(2β):
///
/// `L = (h̃ − 1/(2β))²`, `h̃ = [ℓ̄_θ(y_w) − ℓ̄_θ(y_l)] − [ℓ̄_ref(y_w) − ℓ̄_ref(y_l)]`, `ℓ̄ = S/n`.
/// Rewards `β·(ℓ̄_θ(y) − ℓ̄_ref(y))` (TRL averages the log-probs before its reward line too).
///
/// Azar et al. 2023, "A general theoretical paradigm to understand learning from human preferences"
/// (arXiv 2310.12036), eq. 17, with β playing τ. TRL (all versions) and LLaMA-Factory length-normalize;
/// OpenRLHF and NeMo use summed log-probs, so β values are not interchangeable with theirs.
pub fn ipo(inputs: &LossInputs, beta: f64) -> Result<LossOutput> {
    let x = inputs.checked()?.averaged()?;
    let r = x.log_ratios("ipo")?;
    let losses = (&r.margin - 1.0 / (2.0 * beta))?.sqr()?;
    r.output(losses, beta)
}

/// SPPO with hard labels (`sppo_hard`): push each log-ratio to ±1/(2β) separately:
///
/// `L = (Δ(y_w) − 1/(2β))² + (Δ(y_l) + 1/(2β))²`, summed log-probs. Rewards `β·Δ(y)`.
///
/// Wu et al. 2024, "Self-play preference optimization" (arXiv 2405.00675), eq. 4.7 with the win
/// probability set to 1 for y_w and 0 for y_l; TRL `loss_type="sppo_hard"`. The paper uses β = 1e−3.
pub fn sppo_hard(inputs: &LossInputs, beta: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("sppo_hard")?;
    let target = 0.5 / beta;
    let losses = ((&r.chosen - target)?.sqr()? + (&r.rejected + target)?.sqr()?)?;
    r.output(losses, beta)
}
