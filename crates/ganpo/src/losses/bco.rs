//! BCO-pair (legacy TRL ≤ 0.28 form): binary classification of chosen vs rejected rewards around a
//! running-mean reward shift δ, whose state the caller owns.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::inputs::{LossInputs, LossOutput};
use super::numerics::log_sigmoid;
use crate::Result;

/// Running mean (and variance) of the batch-mean reward, the δ of BCO-pair: TRL's `RunningMoments`
/// (`trl/trainer/utils.py`) fed one scalar per step, reproduced update for update.
///
/// It is training state: save it with checkpoints and restore it on resume. The loss updates it
/// with detached rewards on every call, evaluation included (as TRL does); evaluate with a clone to
/// leave the training state untouched.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BcoRunningMean {
    /// The running mean δ.
    pub mean: f64,
    /// The running (population) variance; kept because TRL keeps and saves it.
    pub var: f64,
    /// The number of values seen (starts at 1e−24, as TRL's, to avoid dividing by zero).
    pub count: f64,
}

impl Default for BcoRunningMean {
    /// TRL's initial state: mean 0, variance 1, count 1e−24.
    fn default() -> Self {
        BcoRunningMean {
            mean: 0.0,
            var: 1.0,
            count: 1e-24,
        }
    }
}

impl BcoRunningMean {
    /// Folds in one batch mean `x` (Chan et al.'s parallel update with a batch of one value, whose
    /// variance is 0) and returns the new mean.
    pub fn update(&mut self, x: f64) -> f64 {
        let delta = x - self.mean;
        let total = self.count + 1.0;
        let old_sum = self.var * self.count + delta * delta * self.count / total;
        self.mean += delta / total;
        self.var = old_sum / total;
        self.count = total;
        self.mean
    }
}

/// BCO-pair (`bco_pair`, TRL ≤ 0.28 and LLaMA-Factory form):
///
/// `L = −log σ(r_w − δ) − log σ(−(r_l − δ))`, `r = β·Δ(y)` over summed log-probs, where δ is the
/// running mean of the batch-mean reward `mean(r_w ∪ r_l)` (detached), updated with this batch
/// **before** it is used. Rewards `r_w`, `r_l`.
///
/// Jung et al. 2024, "Binary classifier optimization for large language model alignment"
/// (arXiv 2404.04656), eq. 8 with the reward shift of §3.3; TRL v0.23 `dpo_loss`. TRL 1.x dropped δ
/// (`−log σ(r_w) − log σ(−r_l)`); the legacy form is kept here for parity with the GANPO code.
pub fn bco_pair(
    inputs: &LossInputs,
    beta: f64,
    running: &mut BcoRunningMean,
) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("bco_pair")?;
    let chosen = r.chosen.affine(beta, 0.0)?;
    let rejected = r.rejected.affine(beta, 0.0)?;
    let batch_mean = Tensor::cat(&[&chosen, &rejected], 0)?
        .detach()
        .mean_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    let delta = running.update(batch_mean);
    let losses =
        (log_sigmoid(&(&chosen - delta)?)?.neg()? - log_sigmoid(&(&rejected - delta)?.neg()?)?)?;
    r.output(losses, beta)
}
