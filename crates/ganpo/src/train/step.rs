//! One optimizer step, top to bottom (ganpo's order; `compat = "authors"` runs
//! [`super::authors_step`] instead):
//!
//! 1. reference forward on every micro-batch (no graph), when the loss or GANPO needs it;
//! 2. GANPO: one discriminator update (or `disc_steps`) on the detached latents of the whole batch;
//! 3. per micro-batch: policy forward, preference loss + λ·L_G through the updated, frozen
//!    discriminators, backward scaled by the micro-batch's share of the batch, gradients summed;
//! 4. global-norm clip, finiteness check, policy AdamW step, metrics.
//!
//! With gradient accumulation (k > 1) the discriminators see the whole batch's latents in one
//! update, as they would with one batch of B: the policy latents for that update come from an
//! extra forward pass per micro-batch whose graph is dropped at once (with k = 1 that pass is
//! the policy forward itself). The optional diagnostic double backward lives in
//! [`super::diagnostics`]; the pieces both steps share in [`super::step_parts`].

use crate::data::BatchTensors;
use crate::train::diagnostics::GradNormRatio;
use crate::train::disc_update::{DiscReport, LatentBatch, disc_apply, disc_losses, pooling_mask};
use crate::train::forward::{PairOutputs, pair_forward};
use crate::train::grad_accum::GradAccumulator;
use crate::train::metrics::Metrics;
use crate::train::phases::{Phase, PhaseClock};
use crate::train::step_parts::{StepSums, generator_term, missing_reference, policy_forward};
use crate::train::trainer::Trainer;
use crate::{Error, Result};

impl Trainer {
    /// Runs one optimizer step over `micro` (the micro-batches of one batch) and returns its metrics
    /// (TRL names plus GANPO's). `diagnostics` adds the adversarial/preference gradient-norm ratio,
    /// at the cost of a second backward pass. With [`Trainer::phase_times`] set, the step's
    /// wall-clock time per phase is added to it.
    pub fn train_step(&mut self, micro: &[BatchTensors], diagnostics: bool) -> Result<Metrics> {
        if micro.iter().all(|b| b.input_ids.dim(0).unwrap_or(0) == 0) {
            return Err(Error::Training("an empty batch".into()));
        }
        if self.schedule.total_steps == 0 {
            return Err(Error::Training(
                "the learning-rate schedules are unsized: call Trainer::set_total_steps before stepping (train::setup::RunSetup does)".into(),
            ));
        }
        let mut times = self.phase_times.take();
        let metrics = {
            let mut clock = PhaseClock::start(times.as_mut());
            if self.authors_compat() {
                self.authors_step(micro, &mut clock)
            } else {
                self.ganpo_step(micro, diagnostics, &mut clock)
            }
        };
        self.phase_times = times;
        metrics
    }

    /// ganpo's step, in the order of the module docs.
    fn ganpo_step(
        &mut self,
        micro: &[BatchTensors],
        diagnostics: bool,
        clock: &mut PhaseClock,
    ) -> Result<Metrics> {
        let total_pairs: usize = micro
            .iter()
            .map(|b| b.input_ids.dim(0).unwrap_or(0) / 2)
            .sum();
        let mut m = Metrics::new();
        let with_wpo = self.config.loss.use_weighting;

        // 1. Reference forward (no graph: the reference holds plain tensors).
        let refs: Vec<Option<PairOutputs>> = micro
            .iter()
            .map(|b| {
                self.reference
                    .as_ref()
                    .map(|r| pair_forward(r, &b.input_ids, &b.attention_mask, &b.loss_mask, false))
                    .transpose()
            })
            .collect::<Result<_>>()?;
        clock.lap(Phase::ReferenceForward);

        // 2. Discriminator update on the whole batch's detached latents (k = 1: the policy
        //    forward it ran is the one step 3 back-propagates).
        let mut policy_outs = self.update_discriminators(micro, &refs, &mut m, clock)?;

        // 3. Per micro-batch: policy forward, preference loss + λ·L_G, backward (the diagnostic
        //    takes the two terms' backward apart).
        let mut acc = GradAccumulator::default();
        let mut ratio = (diagnostics && self.ganpo.is_some()).then(GradNormRatio::default);
        let mut sums = StepSums::default();
        for (i, b) in micro.iter().enumerate() {
            let share = (b.input_ids.dim(0)? / 2) as f64 / total_pairs as f64;
            let out = match policy_outs.get_mut(i).and_then(Option::take) {
                Some(out) => out,
                None => policy_forward(&self.policy, b, with_wpo, clock)?,
            };
            let lo = self.preference_loss(&out, refs[i].as_ref(), &mut sums.preference, share)?;
            let po_loss = (lo.losses.mean_all()? * share)?;
            let adv_loss = match self.ganpo.as_mut() {
                None => None,
                Some(g) => {
                    let lg = generator_term(g, b, &out)?;
                    sums.add_generator(&lg, share)?;
                    Some((lg.per_pair()?.mean_all()? * (g.settings.lambda * share))?)
                }
            };
            clock.lap(Phase::LogpsAndLoss);
            match (adv_loss, ratio.as_mut()) {
                (Some(adv), Some(r)) => r.backward_apart(&self.policy, &po_loss, &adv, &mut acc)?,
                (Some(adv), None) => acc.add(self.policy.backward(&(po_loss + adv)?)?)?,
                (None, _) => acc.add(self.policy.backward(&po_loss)?)?,
            }
            clock.lap(Phase::Backward);
        }

        // 4. Clip, check, step.
        let (norm, lr) = self.policy_update(acc.take(), sums.loss(self.ganpo_lambda()))?;
        clock.lap(Phase::Optimizer);
        self.step += 1;
        self.step_metrics(&mut m, micro, &sums, norm, lr)?;
        if let Some(r) = ratio {
            r.write(&mut m);
        }
        Ok(m)
    }

    /// Step 2: the policy's latents of every micro-batch (from a forward whose graph is kept only
    /// when k = 1, returned for step 3) with the reference's, concatenated into one batch, and
    /// `disc_steps` updates of both discriminators on it; writes the `disc/*` metrics. Without
    /// GANPO, nothing.
    fn update_discriminators(
        &mut self,
        micro: &[BatchTensors],
        refs: &[Option<PairOutputs>],
        m: &mut Metrics,
        clock: &mut PhaseClock,
    ) -> Result<Vec<Option<PairOutputs>>> {
        let Some(g) = self.ganpo.as_mut() else {
            return Ok(Vec::new());
        };
        let k = micro.len();
        let mut kept = Vec::with_capacity(k);
        let mut parts = Vec::with_capacity(k);
        for (b, reference) in micro.iter().zip(refs) {
            let out = policy_forward(&self.policy, b, self.config.loss.use_weighting, clock)?;
            let reference = reference.as_ref().ok_or_else(missing_reference)?;
            let mask = pooling_mask(b, g.settings.pooling)?;
            parts.push(LatentBatch::new(&out, reference, &mask)?);
            kept.push((k == 1).then_some(out));
        }
        let batch = LatentBatch::concat(&parts)?;
        let (mut report, mut lr) = (DiscReport::default(), 0.0);
        for _ in 0..g.settings.disc_steps {
            // The whole batch in one update: weight 1 (the authors' step weighs each of its k
            // micro-batches 1/k).
            let (grads, r) = disc_losses(g, &batch, 1.0)?;
            lr = disc_apply(g, &grads, self.step)?;
            report = r;
        }
        report.write(m);
        m.insert("disc/learning_rate".into(), lr);
        clock.lap(Phase::DiscriminatorUpdate);
        Ok(kept)
    }
}
