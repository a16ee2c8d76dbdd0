//! ORPO: odds-ratio preference optimization, reference-free, as an NLL term plus a log-odds-ratio
//! penalty on average log-probs.

use super::inputs::{LossInputs, LossOutput};
use super::nll::nll_per_example;
use super::numerics::{log_sigmoid, log1mexp};
use crate::Result;

/// Average log-probs closer to 0 than this are clamped to it: a sequence predicted with probability 1
/// in floating point (ℓ̄ = 0) would make `log(1 − e^ℓ̄)` −∞ and the loss NaN.
const MAX_AVG_LOGP: f64 = -1e-30;

/// ORPO (`orpo`), reference-free, with λ = `beta`:
///
/// `ℓ = ℓ̄_θ` (average log-probs), `lor = (ℓ_w − ℓ_l) − [log(1 − e^{ℓ_w}) − log(1 − e^{ℓ_l})]`,
/// `L = NLL(y_w) − λ·log σ(lor)`. Rewards `λ·ℓ̄_θ(y)`.
///
/// `log(1 − e^ℓ)` is [`log1mexp`], accurate for ℓ near 0 where TRL's `log1p(−exp(ℓ))` loses all
/// digits in f32; ℓ̄ is clamped to ≤ −1e−30 (a gradient-free clamp that only touches sequences the
/// model already predicts with probability 1). The NLL counts chosen completion tokens only (TRL's
/// ORPO also counts the prompt; LLaMA-Factory uses the per-sequence average).
///
/// Hong et al. 2024, "ORPO: monolithic preference optimization without reference model"
/// (arXiv 2403.07691), eqs. 4–7; TRL `ORPOTrainer.odds_ratio_loss` and `loss = nll − losses.mean()`.
pub fn orpo(inputs: &LossInputs, beta: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let avg = x.averaged()?;
    let clamp = |t: &candle_core::Tensor| -> Result<candle_core::Tensor> {
        let bound = t.ones_like()?.affine(0.0, MAX_AVG_LOGP)?;
        Ok(t.detach().lt(MAX_AVG_LOGP)?.where_cond(t, &bound)?)
    };
    let chosen = clamp(&avg.policy_chosen_logps)?;
    let rejected = clamp(&avg.policy_rejected_logps)?;
    let log_odds = ((&chosen - &rejected)? - (log1mexp(&chosen)? - log1mexp(&rejected)?)?)?;
    let losses = (nll_per_example(&x, 1.0)? - log_sigmoid(&log_odds)?.affine(beta, 0.0)?)?;
    Ok(LossOutput {
        losses,
        chosen_rewards: avg.policy_chosen_logps.detach().affine(beta, 0.0)?,
        rejected_rewards: avg.policy_rejected_logps.detach().affine(beta, 0.0)?,
    })
}
