//! One optimizer step, top to bottom:
//!
//! 1. reference forward on every micro-batch (no graph), when the loss or GANPO needs it;
//! 2. GANPO discriminator update on detached latents of the whole batch (ganpo's default), or per
//!    micro-batch with the authors' gating (`compat = "authors"`);
//! 3. per micro-batch: policy forward, preference loss + λ·L_G through the frozen discriminators,
//!    backward scaled by the micro-batch's share of the batch, gradients summed;
//! 4. global-norm clip, finiteness check, policy AdamW step.
//!
//! With gradient accumulation (k > 1) the discriminators see the whole batch's latents in one
//! update, as they would with one batch of B: the policy latents for that update come from an
//! extra forward pass per micro-batch whose graph is dropped at once (with k = 1 that pass is
//! the policy forward itself).

use candle_core::{DType, Tensor};

use crate::data::BatchTensors;
use crate::ganpo::generator_losses;
use crate::losses::{LossInputs, WpoLogWeights};
use crate::model::CausalLm;
use crate::optim::{clip_grad_norm, global_grad_norm};
use crate::train::disc_update::{LatentBatch, disc_apply, disc_losses, pooling_mask};
use crate::train::forward::{ModelPass, PairOutputs, pair_forward, pair_outputs};
use crate::train::grad_accum::GradAccumulator;
use crate::train::metrics::Metrics;
use crate::train::phases::{Phase, PhaseClock};
use crate::train::trainer::Trainer;
use crate::{Error, Result};

pub(crate) fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

fn mean(t: &Tensor) -> Result<f64> {
    scalar(&t.to_dtype(DType::F64)?.mean_all()?)
}

pub(crate) fn ordering_accuracy(higher: &Tensor, lower: &Tensor) -> Result<f64> {
    mean(&higher.gt(lower)?.to_dtype(DType::F32)?)
}

/// The policy's [`pair_forward`], with the model forward and the log-probs charged to their phases.
fn policy_forward(
    policy: &CausalLm,
    b: &BatchTensors,
    with_wpo: bool,
    clock: &mut PhaseClock,
) -> Result<PairOutputs> {
    let pass = ModelPass::run(policy, &b.input_ids, &b.attention_mask, with_wpo)?;
    clock.lap(Phase::PolicyForward);
    let out = pair_outputs(policy, &pass, &b.input_ids, &b.loss_mask)?;
    clock.lap(Phase::LogpsAndLoss);
    Ok(out)
}

impl Trainer {
    /// Runs one optimizer step over `micro` (the micro-batches of one batch) and returns its metrics
    /// (TRL names plus GANPO's). `diagnostics` adds the adversarial/preference gradient-norm ratio,
    /// at the cost of a second backward pass. With [`Trainer::phase_times`] set, the step's
    /// wall-clock time per phase is added to it.
    pub fn train_step(&mut self, micro: &[BatchTensors], diagnostics: bool) -> Result<Metrics> {
        let mut times = self.phase_times.take();
        let metrics = self.timed_step(micro, diagnostics, &mut PhaseClock::start(times.as_mut()));
        self.phase_times = times;
        metrics
    }

    fn timed_step(
        &mut self,
        micro: &[BatchTensors],
        diagnostics: bool,
        clock: &mut PhaseClock,
    ) -> Result<Metrics> {
        let total_pairs: usize = micro
            .iter()
            .map(|b| b.input_ids.dim(0).unwrap_or(0) / 2)
            .sum();
        if total_pairs == 0 {
            return Err(Error::Training("an empty batch".into()));
        }
        let mut m = Metrics::new();
        let with_wpo = self.config.loss.use_weighting;
        let authors = self.authors_compat();
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

        // 2. Discriminator update on the whole batch (ganpo's default).
        let mut policy_outs: Vec<Option<PairOutputs>> = (0..k).map(|_| None).collect();
        if let (Some(g), false) = (self.ganpo.as_mut(), authors) {
            let mut parts = Vec::with_capacity(k);
            for (i, b) in micro.iter().enumerate() {
                let out = policy_forward(&self.policy, b, with_wpo, clock)?;
                let reference = refs[i]
                    .as_ref()
                    .ok_or_else(|| Error::Training("GANPO needs the reference".into()))?;
                parts.push(LatentBatch::new(
                    &out,
                    reference,
                    &pooling_mask(b, g.settings.pooling)?,
                )?);
                if k == 1 {
                    policy_outs[i] = Some(out);
                }
            }
            let batch = LatentBatch::concat(&parts)?;
            for _ in 0..g.settings.disc_steps {
                let grads = disc_losses(g, &batch, 1.0, &mut m)?;
                disc_apply(g, &grads, self.step)?;
            }
            clock.lap(Phase::DiscriminatorUpdate);
        }

        // 3. Policy losses per micro-batch.
        let vars = self.policy.vars().to_vec();
        let mut acc = GradAccumulator::default();
        let (mut po_norm_sq, mut adv_norm_sq) = (0.0, 0.0);
        let (mut sums, mut adv_sum) = (SumMetrics::default(), 0.0);
        for (i, b) in micro.iter().enumerate() {
            let share = (b.input_ids.dim(0)? / 2) as f64 / total_pairs as f64;
            let out = match policy_outs[i].take() {
                Some(out) => out,
                None => policy_forward(&self.policy, b, with_wpo, clock)?,
            };
            let reference = refs[i].as_ref();
            let mut inputs =
                LossInputs::from_sequence_logps(&out.sequence, reference.map(|r| &r.sequence))?;
            if let Some(w) = &out.wpo_log_weights {
                let half = w.dim(0)? / 2;
                inputs.wpo_log_weights = Some(WpoLogWeights {
                    chosen: w.narrow(0, 0, half)?,
                    rejected: w.narrow(0, half, half)?,
                });
            }
            let lo = self.loss.compute(&inputs, &mut self.loss_state)?;
            let po_loss = (lo.losses.mean_all()? * share)?;
            sums.add(&out, reference, &lo, share)?;
            let adv_loss = match self.ganpo.as_mut() {
                None => None,
                Some(g) => {
                    let mask = pooling_mask(b, g.settings.pooling)?;
                    if authors {
                        // The authors' per-micro-batch discriminator step, gated below.
                        clock.lap(Phase::LogpsAndLoss);
                        let reference = reference
                            .ok_or_else(|| Error::Training("GANPO needs the reference".into()))?;
                        let batch = LatentBatch::new(&out, reference, &mask)?;
                        let grads = disc_losses(g, &batch, 1.0, &mut m)?;
                        g.pending.add(grads)?;
                        clock.lap(Phase::DiscriminatorUpdate);
                    }
                    let half = mask.dim(0)? / 2;
                    let lg = generator_losses(
                        &mut g.plus,
                        &mut g.minus,
                        &out.chosen_hidden,
                        &out.rejected_hidden,
                        &mask.narrow(0, 0, half)?,
                        &mask.narrow(0, half, half)?,
                        &g.means,
                    )?
                    .mean_all()?;
                    adv_sum += scalar(&lg)? * share;
                    Some((lg * (g.settings.lambda * share))?)
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
        let mut grads = acc.take();
        // Keep only the policy's gradients (L_G's graph also reaches discriminator weights in
        // frozen mode as constants, never as variables, but be explicit about what steps).
        let max_norm = (self.config.training.max_grad_norm > 0.0)
            .then_some(self.config.training.max_grad_norm);
        let norm = clip_grad_norm(&mut grads, &vars, max_norm)?;
        let loss_value =
            sums.loss + self.ganpo.as_ref().map_or(0.0, |g| g.settings.lambda) * adv_sum;
        if !loss_value.is_finite() || !norm.is_finite() {
            return Err(Error::Training(format!(
                "non-finite {} at optimizer step {} (loss {loss_value}, grad_norm {norm}); the policy was not updated — lower the learning rate or check the data",
                if loss_value.is_finite() {
                    "gradient"
                } else {
                    "loss"
                },
                self.step + 1
            )));
        }
        let lr = self.schedule.lr(self.step);
        self.optimizer.step(&grads, lr)?;
        clock.lap(Phase::Optimizer);
        if let (Some(g), true) = (self.ganpo.as_mut(), authors) {
            let accumulation = self.config.training.gradient_accumulation_steps as u64;
            if (self.step + 1).is_multiple_of(accumulation) {
                let pending = g.pending.take();
                disc_apply(g, &pending, self.step)?;
            }
            clock.lap(Phase::DiscriminatorUpdate);
        }
        self.step += 1;

        sums.write(&mut m);
        m.insert("loss".into(), loss_value);
        m.insert("grad_norm".into(), norm);
        m.insert("learning_rate".into(), lr);
        let mut tokens = 0.0;
        for b in micro {
            tokens += scalar(&b.attention_mask.to_dtype(DType::F64)?.sum_all()?)?;
        }
        m.insert("num_tokens".into(), tokens);
        if let Some(g) = &self.ganpo {
            m.insert("adv/loss".into(), adv_sum);
            if let Some(b) = g.means.get() {
                for (name, v) in [
                    ("plus_policy", b.plus_policy),
                    ("plus_ref_chosen", b.plus_ref_chosen),
                    ("plus_ref_rejected", b.plus_ref_rejected),
                    ("minus_policy", b.minus_policy),
                    ("minus_ref_chosen", b.minus_ref_chosen),
                    ("minus_ref_rejected", b.minus_ref_rejected),
                ] {
                    m.insert(format!("disc/mean_{name}"), v);
                }
            }
            if diagnostics && po_norm_sq > 0.0 {
                m.insert(
                    "adv/grad_norm_ratio".into(),
                    (adv_norm_sq / po_norm_sq).sqrt(),
                );
            }
        }
        Ok(m)
    }
}

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
    pub(crate) fn add(
        &mut self,
        out: &PairOutputs,
        _reference: Option<&PairOutputs>,
        lo: &crate::losses::LossOutput,
        share: f64,
    ) -> Result<()> {
        self.loss += mean(&lo.losses.detach())? * share;
        self.chosen_rewards += mean(&lo.chosen_rewards)? * share;
        self.rejected_rewards += mean(&lo.rejected_rewards)? * share;
        self.accuracy += ordering_accuracy(&lo.chosen_rewards, &lo.rejected_rewards)? * share;
        self.chosen_logps += mean(&out.chosen_logps.detach())? * share;
        self.rejected_logps += mean(&out.rejected_logps.detach())? * share;
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

    fn write(&self, m: &mut Metrics) {
        self.write_prefixed(m, "");
    }

    pub(crate) fn loss(&self) -> f64 {
        self.loss
    }
}
