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
//! the policy forward itself).

use crate::data::BatchTensors;
use crate::optim::global_grad_norm;
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
        let k = micro.len();

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

        // 2. Discriminator update on the whole batch's detached latents.
        let mut policy_outs: Vec<Option<PairOutputs>> = (0..k).map(|_| None).collect();
        if let Some(g) = self.ganpo.as_mut() {
            let mut parts = Vec::with_capacity(k);
            for (i, b) in micro.iter().enumerate() {
                let out = policy_forward(&self.policy, b, with_wpo, clock)?;
                let reference = refs[i].as_ref().ok_or_else(missing_reference)?;
                let mask = pooling_mask(b, g.settings.pooling)?;
                parts.push(LatentBatch::new(&out, reference, &mask)?);
                if k == 1 {
                    policy_outs[i] = Some(out);
                }
            }
            let batch = LatentBatch::concat(&parts)?;
            let (mut report, mut lr) = (DiscReport::default(), 0.0);
            for _ in 0..g.settings.disc_steps {
                let (grads, r) = disc_losses(g, &batch, 1.0)?;
                lr = disc_apply(g, &grads, self.step)?;
                report = r;
            }
            report.write(&mut m);
            m.insert("disc/learning_rate".into(), lr);
            clock.lap(Phase::DiscriminatorUpdate);
        }

        // 3. Policy losses per micro-batch.
        let vars = self.policy.vars().to_vec();
        let mut acc = GradAccumulator::default();
        let (mut po_norm_sq, mut adv_norm_sq) = (0.0, 0.0);
        let mut sums = StepSums::default();
        for (i, b) in micro.iter().enumerate() {
            let share = (b.input_ids.dim(0)? / 2) as f64 / total_pairs as f64;
            let out = match policy_outs[i].take() {
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
            match (adv_loss, diagnostics) {
                (Some(adv), true) => {
                    let g_po = self.policy.backward(&po_loss)?;
                    let g_adv = self.policy.backward(&adv)?;
                    po_norm_sq += global_grad_norm(&g_po, &vars)?.powi(2);
                    adv_norm_sq += global_grad_norm(&g_adv, &vars)?.powi(2);
                    acc.add(g_po)?;
                    acc.add(g_adv)?;
                }
                (Some(adv), false) => acc.add(self.policy.backward(&(po_loss + adv)?)?)?,
                (None, _) => acc.add(self.policy.backward(&po_loss)?)?,
            }
            clock.lap(Phase::Backward);
        }

        // 4. Clip, check, step.
        let (norm, lr) = self.policy_update(acc.take(), sums.loss(self.ganpo_lambda()))?;
        clock.lap(Phase::Optimizer);
        self.step += 1;
        self.step_metrics(&mut m, micro, &sums, norm, lr)?;
        if self.ganpo.is_some() && diagnostics && po_norm_sq > 0.0 {
            m.insert(
                "adv/grad_norm_ratio".into(),
                (adv_norm_sq / po_norm_sq).sqrt(),
            );
        }
        Ok(m)
    }
}
