//! The resolved loss: a weighted sum of objectives plus the composable terms, applied in TRL ≤ 0.28's
//! order (LD-DPO on the inputs → objectives → + RPO's NLL → × WPO weight), and the state it carries.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::bco::BcoRunningMean;
use super::inputs::{LossInputs, LossOutput};
use super::ld::length_desensitized_logps;
use super::nll::nll_per_example;
use super::objective::Objective;
use super::wpo::wpo_weights;
use crate::{Error, Result};

/// Loss state that persists across steps and belongs in checkpoints: today only BCO-pair's running
/// mean δ. The caller owns it and passes it to every [`Loss::compute`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossState {
    /// BCO-pair's running mean of the batch-mean reward (unused by other objectives).
    pub bco_pair: BcoRunningMean,
}

/// A validated loss, built by [`super::LossConfig::resolve`].
#[derive(Debug, Clone, PartialEq)]
pub struct Loss {
    components: Vec<(f64, Objective)>,
    rpo_alpha: Option<f64>,
    use_weighting: bool,
    ld_alpha: Option<f64>,
}

impl Loss {
    pub(crate) fn new(
        components: Vec<(f64, Objective)>,
        rpo_alpha: Option<f64>,
        use_weighting: bool,
        ld_alpha: Option<f64>,
    ) -> Self {
        Loss {
            components,
            rpo_alpha,
            use_weighting,
            ld_alpha,
        }
    }

    /// The weighted objectives (one with weight 1 for a single `[loss.objective]`).
    pub fn components(&self) -> &[(f64, Objective)] {
        &self.components
    }

    /// The policy's sequence log-probs `(chosen, rejected)`, `[B]` each, as TRL logs them under
    /// `logps/chosen` and `logps/rejected`: the values its loss reads. LD-DPO's desensitized sums
    /// (TRL applies them last, over any averaging); averages per token when a component uses
    /// them (IPO in `DPOTrainer`, SimPO in `CPOTrainer`, ORPO in `ORPOTrainer`); sums otherwise.
    pub fn logged_logps(&self, inputs: &LossInputs) -> Result<(Tensor, Tensor)> {
        let x = inputs.checked()?;
        if let (Some(alpha), Some(tokens)) = (self.ld_alpha, x.policy_token_logps.as_ref()) {
            let (c, r) = length_desensitized_logps(tokens, alpha)?;
            return Ok((c.detach(), r.detach()));
        }
        let averaged = self.components.iter().any(|(_, o)| {
            matches!(
                o,
                Objective::Ipo(_) | Objective::Simpo(_) | Objective::Orpo(_)
            )
        });
        let x = if averaged { x.averaged()? } else { x };
        Ok((
            x.policy_chosen_logps.detach(),
            x.policy_rejected_logps.detach(),
        ))
    }

    /// The same loss without WPO weighting (evaluation reports the unweighted objective).
    pub fn without_weighting(&self) -> Loss {
        Loss {
            use_weighting: false,
            ..self.clone()
        }
    }

    /// Whether any component needs the reference model's log-probs.
    pub fn requires_reference(&self) -> bool {
        self.components.iter().any(|(_, o)| o.requires_reference())
    }

    /// Per-example losses `[B]` and detached rewards for one batch:
    ///
    /// 1. LD-DPO (`ld_alpha`): the policy's summed log-probs are replaced by their length-desensitized
    ///    sums (reference untouched);
    /// 2. `L = Σ_k w_k L_k`, rewards `Σ_k w_k r_k` (TRL's `loss_type` list with `loss_weights`); each
    ///    objective decides sum vs average itself (TRL ≤ 0.28 instead averages *every* component's
    ///    log-probs as soon as `ipo` is in the list);
    /// 3. RPO (`rpo_alpha`): `L += rpo_alpha · NLL(y_w)` over the plain summed log-probs;
    /// 4. WPO (`use_weighting`): `L *= min(w(y_w)·w(y_l), 1)`, applied to the total, RPO term included.
    ///
    /// The caller reduces `losses` (TRL: mean) and keeps `state` for the next step.
    pub fn compute(&self, inputs: &LossInputs, state: &mut LossState) -> Result<LossOutput> {
        let x = inputs.checked()?;
        let preference = match self.ld_alpha {
            Some(alpha) => {
                let tokens = x.policy_token_logps.as_ref().ok_or_else(|| {
                    Error::Config(
                        "[loss] ld_alpha (LD-DPO) needs the policy's token log-probs in LossInputs.policy_token_logps"
                            .into(),
                    )
                })?;
                let (chosen, rejected) = length_desensitized_logps(tokens, alpha)?;
                LossInputs {
                    policy_chosen_logps: chosen,
                    policy_rejected_logps: rejected,
                    ..x.clone()
                }
            }
            None => x.clone(),
        };

        let mut total: Option<LossOutput> = None;
        for (weight, objective) in &self.components {
            let out = objective.compute(&preference, &mut state.bco_pair)?;
            let scaled = LossOutput {
                losses: out.losses.affine(*weight, 0.0)?,
                chosen_rewards: out.chosen_rewards.affine(*weight, 0.0)?,
                rejected_rewards: out.rejected_rewards.affine(*weight, 0.0)?,
            };
            total = Some(match total {
                None => scaled,
                Some(t) => LossOutput {
                    losses: (t.losses + scaled.losses)?,
                    chosen_rewards: (t.chosen_rewards + scaled.chosen_rewards)?,
                    rejected_rewards: (t.rejected_rewards + scaled.rejected_rewards)?,
                },
            });
        }
        let mut out = total.ok_or_else(|| Error::Config("[loss] has no objective".into()))?;

        if let Some(alpha) = self.rpo_alpha {
            out.losses = (out.losses + nll_per_example(&x, alpha)?)?;
        }
        if self.use_weighting {
            let log_weights = x.wpo_log_weights.as_ref().ok_or_else(|| {
                Error::Config(
                    "[loss] use_weighting (WPO) needs LossInputs.wpo_log_weights from the policy's logits"
                        .into(),
                )
            })?;
            out.losses = out.losses.mul(&wpo_weights(log_weights)?)?;
        }
        Ok(out)
    }
}
