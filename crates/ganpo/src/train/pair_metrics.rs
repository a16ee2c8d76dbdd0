//! TRL's preference metrics (`rewards/*`, `logps/*`, `logits/*` and the loss), summed over
//! micro-batches with each one's share of the batch, for training steps and evaluation alike.

use candle_core::Tensor;

use crate::Result;
use crate::losses::LossOutput;
use crate::train::forward::PairOutputs;
use crate::train::metrics::{Metrics, mean, ordering_accuracy};

/// Batch-weighted sums of the preference metrics over micro-batches.
#[derive(Default)]
pub(crate) struct SumMetrics {
    loss: f64,
    chosen_rewards: f64,
    rejected_rewards: f64,
    accuracy: f64,
    chosen_logps: f64,
    rejected_logps: f64,
    chosen_logits: f64,
    rejected_logits: f64,
}

impl SumMetrics {
    /// Adds one micro-batch: `out` its policy outputs, `logged` the policy log-probs as TRL logs
    /// them for this loss ([`crate::losses::Loss::logged_logps`]), `lo` the loss, `share` its
    /// fraction of the batch.
    pub(crate) fn add(
        &mut self,
        out: &PairOutputs,
        logged: &(Tensor, Tensor),
        lo: &LossOutput,
        share: f64,
    ) -> Result<()> {
        self.loss += mean(&lo.losses.detach())? * share;
        self.chosen_rewards += mean(&lo.chosen_rewards)? * share;
        self.rejected_rewards += mean(&lo.rejected_rewards)? * share;
        self.accuracy += ordering_accuracy(&lo.chosen_rewards, &lo.rejected_rewards)? * share;
        self.chosen_logps += mean(&logged.0)? * share;
        self.rejected_logps += mean(&logged.1)? * share;
        self.chosen_logits += out.chosen_mean_logit * share;
        self.rejected_logits += out.rejected_mean_logit * share;
        Ok(())
    }

    pub(crate) fn write_prefixed(&self, m: &mut Metrics, prefix: &str) {
        let mut put = |k: &str, v: f64| {
            m.insert(format!("{prefix}{k}"), v);
        };
        put("rewards/chosen", self.chosen_rewards);
        put("rewards/rejected", self.rejected_rewards);
        put(
            "rewards/margins",
            self.chosen_rewards - self.rejected_rewards,
        );
        put("rewards/accuracies", self.accuracy);
        put("logps/chosen", self.chosen_logps);
        put("logps/rejected", self.rejected_logps);
        put("logits/chosen", self.chosen_logits);
        put("logits/rejected", self.rejected_logits);
    }

    /// The loss, mean over the pairs added.
    pub(crate) fn loss(&self) -> f64 {
        self.loss
    }
}
