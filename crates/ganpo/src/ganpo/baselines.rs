//! The six running means (baselines m̄) of GANPO's relativistic losses, and when they are updated.
//!
//! The authors' order (`GANPO_trl.py`, `compute_loss_disc`, once per micro-batch), which
//! [`super::objective`] follows:
//!
//! 1. D⁺ and D⁻ score the four latent groups in training mode (six forwards, see [`Baselines`]).
//! 2. Every mean is updated from the batch mean of its own fresh score, detached: the first step
//!    copies the batch means, later steps use `m̄ ← μ·m̄ + (1 − μ)·batch_mean` with μ = 0.9.
//! 3. The discriminator losses subtract the *updated* means, so the current batch already weighs
//!    1 − μ in them (all of it at the first step).
//! 4. The generator term, computed after the discriminator step, reads m̄⁺_ref+ and m̄⁻_ref− as left by
//!    step 2. The generator's own (eval-mode) scores update nothing.
//!
//! The authors declare eight fields; two (`running_mean_policy_rejected`, `running_mean_policy_rej`)
//! are never used, and their means are not checkpointed (we do: [`RunningMeans`] is serde).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::losses::DiscriminatorScores;
use crate::{Error, Result};

/// One value per (discriminator, latent group) pair, named as [`DiscriminatorScores`]'s fields.
/// Authors' names in parentheses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baselines {
    /// m̄⁺_θ: D⁺ on the policy's chosen latents (`running_mean_policy`).
    pub plus_policy: f64,
    /// m̄⁺_ref+: D⁺ on the reference's chosen latents (`running_mean_pos`).
    pub plus_ref_chosen: f64,
    /// m̄⁺_ref−: D⁺ on the reference's rejected latents (`running_mean_neg`).
    pub plus_ref_rejected: f64,
    /// m̄⁻_θ: D⁻ on the policy's rejected latents (`running_mean_policy_rejected_rej`).
    pub minus_policy: f64,
    /// m̄⁻_ref+: D⁻ on the reference's chosen latents (`running_mean_pos_rej`).
    pub minus_ref_chosen: f64,
    /// m̄⁻_ref−: D⁻ on the reference's rejected latents (`running_mean_neg_rej`).
    pub minus_ref_rejected: f64,
}

impl Baselines {
    /// The batch mean of each score (one device-to-host transfer for all six).
    pub fn batch_means(scores: &DiscriminatorScores) -> Result<Self> {
        let s = scores;
        let groups = [
            &s.plus_policy,
            &s.plus_ref_chosen,
            &s.plus_ref_rejected,
            &s.minus_policy,
            &s.minus_ref_chosen,
            &s.minus_ref_rejected,
        ]
        .map(|t| t.detach().to_dtype(candle_core::DType::F64));
        let groups = groups
            .into_iter()
            .collect::<candle_core::Result<Vec<_>>>()?;
        let m = Tensor::stack(&groups, 0)?.mean(1)?.to_vec1::<f64>()?;
        Ok(Baselines {
            plus_policy: m[0],
            plus_ref_chosen: m[1],
            plus_ref_rejected: m[2],
            minus_policy: m[3],
            minus_ref_chosen: m[4],
            minus_ref_rejected: m[5],
        })
    }

    /// `μ·self + (1 − μ)·batch`, field by field.
    pub fn ema(&self, batch: &Baselines, momentum: f64) -> Baselines {
        let f = |old: f64, new: f64| momentum * old + (1.0 - momentum) * new;
        Baselines {
            plus_policy: f(self.plus_policy, batch.plus_policy),
            plus_ref_chosen: f(self.plus_ref_chosen, batch.plus_ref_chosen),
            plus_ref_rejected: f(self.plus_ref_rejected, batch.plus_ref_rejected),
            minus_policy: f(self.minus_policy, batch.minus_policy),
            minus_ref_chosen: f(self.minus_ref_chosen, batch.minus_ref_chosen),
            minus_ref_rejected: f(self.minus_ref_rejected, batch.minus_ref_rejected),
        }
    }
}

/// The running means with their momentum. Serialize it into checkpoints; deserializing validates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RunningMeansState")]
pub struct RunningMeans {
    momentum: f64,
    values: Option<Baselines>,
}

/// The serialized form, checked by `TryFrom` on restore.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunningMeansState {
    momentum: f64,
    values: Option<Baselines>,
}

impl TryFrom<RunningMeansState> for RunningMeans {
    type Error = Error;

    fn try_from(state: RunningMeansState) -> Result<Self> {
        let mut means = RunningMeans::new(state.momentum)?;
        means.values = state.values;
        Ok(means)
    }
}

impl RunningMeans {
    /// The authors' momentum.
    pub const AUTHORS_MOMENTUM: f64 = 0.9;

    /// Empty running means; `momentum` (μ) must lie in `[0, 1)`.
    pub fn new(momentum: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&momentum) {
            return Err(Error::Config(format!(
                "running-mean momentum must be in [0, 1), got {momentum}"
            )));
        }
        Ok(RunningMeans {
            momentum,
            values: None,
        })
    }

    /// μ.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// The current means, `None` before the first discriminator step.
    pub fn get(&self) -> Option<&Baselines> {
        self.values.as_ref()
    }

    /// The current means, or an error before the first discriminator step.
    pub fn require(&self) -> Result<&Baselines> {
        self.values.as_ref().ok_or_else(|| {
            Error::Config(
                "GANPO running means are empty: run a discriminator step before the generator loss"
                    .into(),
            )
        })
    }

    /// Folds in one batch's means (copied at the first call, EMA afterwards) and returns the result.
    pub fn update(&mut self, batch: &Baselines) -> Baselines {
        let next = match &self.values {
            None => *batch,
            Some(old) => old.ema(batch, self.momentum),
        };
        self.values = Some(next);
        next
    }
}
