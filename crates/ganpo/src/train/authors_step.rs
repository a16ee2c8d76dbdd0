//! `compat = "authors"`: one optimizer step in the order of the authors' trainer
//! (`QuadGANDPOTrainer.training_step`, `GANPO_trl.py` at 58ca06d, run on TRL 0.27 /
//! transformers 5), checked end to end against it by `crates/ganpo-cli/tests/authors_parity.rs`.
//! Per micro-batch i of the step's k:
//!
//! 1. policy forward (with graph) and reference forward;
//! 2. D⁺ and D⁻ score the detached latents in training mode (six calls, unmasked), the running
//!    means fold in this micro-batch, and the discriminator losses divided by k are
//!    back-propagated into gradients that wait in `GanpoParts::pending` (their `.grad`), across
//!    optimizer steps if need be;
//! 3. when `(step + 1) % gradient_accumulation_steps == 0` (their gate, on the optimizer-step
//!    counter), the last micro-batch updates both discriminators with everything pending:
//!    accelerate's wrapped optimizer steps only on the micro-batch that syncs gradients. The
//!    learning rate is their cosine schedule at the number of updates made so far;
//! 4. the generator term through the (possibly just updated) discriminators in eval mode, and
//!    the policy's backward of `(L_PO + λ·L_G) / k`.
//!
//! Then the policy's clip and AdamW step, as the transformers `Trainer` does.

use crate::data::BatchTensors;
use crate::train::disc_update::{DiscReport, LatentBatch, disc_apply, disc_losses, pooling_mask};
use crate::train::forward::pair_forward;
use crate::train::grad_accum::GradAccumulator;
use crate::train::metrics::Metrics;
use crate::train::phases::{Phase, PhaseClock};
use crate::train::step_parts::{StepSums, generator_term, missing_reference, policy_forward};
use crate::train::trainer::Trainer;
use crate::{Error, Result};

impl Trainer {
    pub(crate) fn authors_step(
        &mut self,
        micro: &[BatchTensors],
        clock: &mut PhaseClock,
    ) -> Result<Metrics> {
        let k = micro.len();
        let accumulation = self.config.training.gradient_accumulation_steps as u64;
        let gate = (self.step + 1).is_multiple_of(accumulation);
        // Their `current_gradient_accumulation_steps`: every micro-batch weighs 1/k.
        let scale = 1.0 / k as f64;
        let with_wpo = self.config.loss.use_weighting;
        let mut m = Metrics::new();
        let mut acc = GradAccumulator::default();
        let mut sums = StepSums::default();
        let (mut disc, mut disc_lr) = (DiscReport::default(), None);
        let lambda = self.ganpo_lambda();
        for (i, b) in micro.iter().enumerate() {
            // 1. Forwards.
            let out = policy_forward(&self.policy, b, with_wpo, clock)?;
            let reference = self.reference.as_ref().ok_or_else(missing_reference)?;
            let reference = pair_forward(
                reference,
                &b.input_ids,
                &b.attention_mask,
                &b.loss_mask,
                false,
            )?;
            clock.lap(Phase::ReferenceForward);
            let g = self
                .ganpo
                .as_mut()
                .ok_or_else(|| Error::Training("compat = \"authors\" needs [ganpo]".into()))?;

            // 2. Discriminator losses; gradients wait for the gated update.
            let mask = pooling_mask(b, g.settings.pooling)?;
            let (grads, report) =
                disc_losses(g, &LatentBatch::new(&out, &reference, &mask)?, scale)?;
            g.pending.add(grads)?;
            disc.add(&report, scale);

            // 3. Their gate fires on the micro-batch that syncs gradients.
            if gate && i + 1 == k {
                let pending = g.pending.take();
                disc_lr = Some(disc_apply(g, &pending, self.step)?);
            }
            clock.lap(Phase::DiscriminatorUpdate);

            // 4. Generator term through the updated discriminators, policy backward.
            let lg = generator_term(g, b, &out)?;
            sums.add_generator(&lg, scale)?;
            let lo = self.preference_loss(&out, Some(&reference), &mut sums.preference, scale)?;
            let loss = ((lo.losses.mean_all()? + (lg.per_pair()?.mean_all()? * lambda)?)? * scale)?;
            clock.lap(Phase::LogpsAndLoss);
            acc.add(self.policy.backward(&loss)?)?;
            clock.lap(Phase::Backward);
        }

        let (norm, lr) = self.policy_update(acc.take(), sums.loss(lambda))?;
        clock.lap(Phase::Optimizer);
        self.step += 1;
        disc.write(&mut m);
        if let Some(lr) = disc_lr {
            m.insert("disc/learning_rate".into(), lr);
        }
        self.step_metrics(&mut m, micro, &sums, norm, lr)?;
        Ok(m)
    }
}
