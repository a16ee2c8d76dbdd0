//! SimPO: reference-free preference optimization on average log-probs with a target reward margin.

use serde::{Deserialize, Serialize};

use super::dpo::smoothed_logistic;
use super::inputs::{LossInputs, LossOutput};
use super::nll::nll_per_example;
use super::numerics::relu;
use crate::Result;

/// The shape of SimPO's loss on its logit (the SimPO repository's `loss_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimpoLossType {
    /// `−(1−ε)·log σ(β u) − ε·log σ(−β u)`.
    #[default]
    Sigmoid,
    /// `max(0, 1 − β u)`.
    Hinge,
}

/// SimPO (`simpo`), reference-free:
///
/// `u = ℓ̄_θ(y_w) − ℓ̄_θ(y_l) − γ/β` with `ℓ̄ = S/n` (average log-probs) and `γ/β = gamma_beta_ratio`,
/// `L = −(1−ε)·log σ(β u) − ε·log σ(−β u)` (= `−log σ(β ℓ̄_w − β ℓ̄_l − γ)` at ε = 0), or
/// `max(0, 1 − β u)` for the hinge type; plus `sft_weight · NLL(y_w)` when `sft_weight > 0`.
/// Rewards `β·ℓ̄_θ(y)`.
///
/// Meng et al. 2024, "SimPO: simple preference optimization with a reference-free reward"
/// (arXiv 2405.14734), eq. 6; `princeton-nlp/SimPO` `scripts/simpo_trainer.py` (`simpo_loss`, defaults
/// β = 2, gamma_beta_ratio = 0.25); TRL's CPO `loss_type="simpo"` with `simpo_gamma = β·gamma_beta_ratio`.
pub fn simpo(
    inputs: &LossInputs,
    beta: f64,
    gamma_beta_ratio: f64,
    label_smoothing: f64,
    sft_weight: f64,
    loss_type: SimpoLossType,
) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let avg = x.averaged()?;
    let logits = ((&avg.policy_chosen_logps - &avg.policy_rejected_logps)? - gamma_beta_ratio)?;
    let mut losses = match loss_type {
        SimpoLossType::Sigmoid => smoothed_logistic(&logits.affine(beta, 0.0)?, label_smoothing)?,
        SimpoLossType::Hinge => relu(&logits.affine(-beta, 1.0)?)?,
    };
    if sft_weight > 0.0 {
        losses = (losses + nll_per_example(&x, sft_weight)?)?;
    }
    Ok(LossOutput {
        losses,
        chosen_rewards: avg.policy_chosen_logps.detach().affine(beta, 0.0)?,
        rejected_rewards: avg.policy_rejected_logps.detach().affine(beta, 0.0)?,
    })
}
