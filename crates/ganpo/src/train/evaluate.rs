//! The one preference-evaluation loop: policy (and reference) over held-out pairs in batches, no
//! gradient, TRL's `eval_*` metrics weighted by each batch's share of the pairs. The run's own
//! evaluation ([`Trainer::evaluate`], its configured loss) and `ganpo eval`
//! ([`crate::eval::preference_eval`], DPO at a given β plus pooled latents) both run it.

use candle_core::Tensor;

use crate::Result;
use crate::data::{Batch, BatchTensors, TokenizedPair};
use crate::losses::{LossInputs, LossOutput};
use crate::model::CausalLm;
use crate::train::forward::{PairOutputs, pair_forward};
use crate::train::metrics::Metrics;
use crate::train::pair_metrics::SumMetrics;
use crate::train::trainer::Trainer;

/// The models evaluated and how the pairs are batched.
pub struct EvalPass<'a> {
    /// The policy.
    pub policy: &'a CausalLm,
    /// The frozen reference, when the loss uses one.
    pub reference: Option<&'a CausalLm>,
    /// The padding token id.
    pub pad_id: u32,
    /// Pairs per batch (at least 1).
    pub batch_size: usize,
}

/// A batch's loss and the policy log-probs logged for it (TRL's `logps/*`).
pub type EvalLoss = (LossOutput, (Tensor, Tensor));

impl EvalPass<'_> {
    /// Runs the pass over `pairs`: `loss` scores each batch, `visit` sees each batch with the policy's
    /// and the reference's outputs (e.g. to pool latents). Returns `eval_loss` and
    /// `eval_{rewards,logps,logits}/*`, means over the pairs.
    pub fn run(
        &self,
        pairs: &[TokenizedPair],
        mut loss: impl FnMut(&PairOutputs, &LossInputs) -> Result<EvalLoss>,
        mut visit: impl FnMut(&BatchTensors, &PairOutputs, Option<&PairOutputs>) -> Result<()>,
    ) -> Result<Metrics> {
        let total = pairs.len() as f64;
        let mut sums = SumMetrics::default();
        for chunk in pairs.chunks(self.batch_size.max(1)) {
            let batch = Batch::collate(chunk, self.pad_id)?.to_tensors(self.policy.device())?;
            let forward = |m: &CausalLm| {
                pair_forward(
                    m,
                    &batch.input_ids,
                    &batch.attention_mask,
                    &batch.loss_mask,
                    false,
                )
            };
            let out = forward(self.policy)?;
            let reference = self.reference.map(forward).transpose()?;
            let inputs = LossInputs::from_sequence_logps(
                &out.sequence,
                reference.as_ref().map(|r| &r.sequence),
            )?;
            let (lo, logged) = loss(&out, &inputs)?;
            sums.add(&out, &logged, &lo, chunk.len() as f64 / total)?;
            visit(&batch, &out, reference.as_ref())?;
        }
        let mut metrics = Metrics::new();
        sums.write_prefixed(&mut metrics, "eval_");
        metrics.insert("eval_loss".into(), sums.loss());
        Ok(metrics)
    }
}

impl Trainer {
    /// Preference metrics of the policy on `pairs` under the run's loss (unweighted: WPO weights
    /// only rescale the training loss), prefixed `eval_`. Batches of
    /// `per_device_eval_batch_size` pairs (default: the training batch size).
    pub fn evaluate(&mut self, pairs: &[TokenizedPair]) -> Result<Metrics> {
        let t = &self.config.training;
        let pass = EvalPass {
            policy: &self.policy,
            reference: self.reference.as_ref(),
            pad_id: self.tokenizer.pad_id(),
            batch_size: t
                .per_device_eval_batch_size
                .unwrap_or(t.per_device_train_batch_size),
        };
        let loss = self.loss.without_weighting();
        let mut state = self.loss_state; // evaluation must not advance BCO's running mean
        pass.run(
            pairs,
            |_, inputs| {
                Ok((
                    loss.compute(inputs, &mut state)?,
                    loss.logged_logps(inputs)?,
                ))
            },
            |_, _, _| Ok(()),
        )
    }
}
