//! CPO: contrastive preference optimization, a reference-free DPO on summed log-probs plus a
//! behaviour-cloning (NLL) term on the chosen completions.

use super::dpo::smoothed_logistic;
use super::inputs::{LossInputs, LossOutput};
use super::nll::nll_per_example;
use crate::Result;

/// CPO (`cpo`), reference-free:
///
/// `L = −(1−ε)·log σ(β[S_θ(y_w) − S_θ(y_l)]) − ε·log σ(−β[S_θ(y_w) − S_θ(y_l)]) + cpo_alpha·NLL(y_w)`
/// over **summed** log-probs. Rewards `β·S_θ(y)`.
///
/// Xu et al. 2024, "Contrastive preference optimization" (arXiv 2401.08417), eq. 3 (the BC term is
/// the token-mean NLL, see [`super::nll()`]); TRL `CPOTrainer.cpo_loss` with `loss_type="sigmoid"`,
/// `alpha = 0`, and `loss = losses.mean() + cpo_alpha * nll_loss`.
pub fn cpo(
    inputs: &LossInputs,
    beta: f64,
    label_smoothing: f64,
    cpo_alpha: f64,
) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let logits = (&x.policy_chosen_logps - &x.policy_rejected_logps)?;
    let mut losses = smoothed_logistic(&logits.affine(beta, 0.0)?, label_smoothing)?;
    if cpo_alpha != 0.0 {
        losses = (losses + nll_per_example(&x, cpo_alpha)?)?;
    }
    Ok(LossOutput {
        losses,
        chosen_rewards: x.policy_chosen_logps.detach().affine(beta, 0.0)?,
        rejected_rewards: x.policy_rejected_logps.detach().affine(beta, 0.0)?,
    })
}
