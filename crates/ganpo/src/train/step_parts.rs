//! The pieces both training steps share ([`super::step`]: ganpo's; [`super::authors_step`]: the
//! authors' order): the policy forward, the preference and generator losses of a micro-batch, the
//! policy update (clip, finiteness check, AdamW) and the step's metrics.

use candle_core::DType;
use candle_core::backprop::GradStore;

use crate::data::BatchTensors;
use crate::ganpo::{GeneratorLosses, generator_terms};
use crate::losses::{LossInputs, LossOutput, WpoLogWeights};
use crate::model::CausalLm;
use crate::optim::clip_grad_norm;
use crate::train::disc_update::pooling_mask;
use crate::train::forward::{ModelPass, PairOutputs, pair_outputs};
use crate::train::metrics::{Metrics, mean, scalar};
use crate::train::pair_metrics::SumMetrics;
use crate::train::phases::{Phase, PhaseClock};
use crate::train::trainer::{GanpoParts, Trainer};
use crate::{Error, Result};

/// The error of a GANPO step run without its reference model.
pub(crate) fn missing_reference() -> Error {
    Error::Training("GANPO needs the reference model".into())
}

/// The policy's pair forward, with the model forward and the log-probs charged to their phases.
pub(crate) fn policy_forward(
    policy: &CausalLm,
    b: &BatchTensors,
    with_wpo: bool,
    clock: &mut PhaseClock,
) -> Result<PairOutputs> {
    // Adapter dropout (LoRA) applies to training forwards only.
    let dropout = policy.lora_training();
    let pass = ModelPass::run(policy, &b.input_ids, &b.attention_mask, with_wpo)?;
    drop(dropout);
    clock.lap(Phase::PolicyForward);
    let out = pair_outputs(policy, &pass, &b.input_ids, &b.loss_mask)?;
    clock.lap(Phase::LogpsAndLoss);
    Ok(out)
}

/// The generator term's halves for one micro-batch: the policy's latents through the frozen
/// discriminators under the configured pooling.
pub(crate) fn generator_term(
    g: &mut GanpoParts,
    b: &BatchTensors,
    out: &PairOutputs,
) -> Result<GeneratorLosses> {
    let mask = pooling_mask(b, g.settings.pooling)?;
    let half = mask.dim(0)? / 2;
    generator_terms(
        &mut g.plus,
        &mut g.minus,
        &out.chosen_hidden,
        &out.rejected_hidden,
        &mask.narrow(0, 0, half)?,
        &mask.narrow(0, half, half)?,
        &g.means,
    )
}

/// Batch-weighted sums of a step's metrics over its micro-batches.
#[derive(Default)]
pub(crate) struct StepSums {
    /// The preference metrics (TRL's names).
    pub(crate) preference: SumMetrics,
    /// L_G's chosen half (D⁺), mean over pairs.
    pub(crate) generator_chosen: f64,
    /// L_G's rejected half (D⁻).
    pub(crate) generator_rejected: f64,
}

impl StepSums {
    /// L_G = ½ (chosen + rejected), mean over the step's pairs.
    pub(crate) fn generator(&self) -> f64 {
        0.5 * (self.generator_chosen + self.generator_rejected)
    }

    /// The step's loss as TRL logs it: the preference loss plus λ·L_G.
    pub(crate) fn loss(&self, lambda: f64) -> f64 {
        self.preference.loss() + lambda * self.generator()
    }

    /// Adds one micro-batch's generator halves with weight `share`.
    pub(crate) fn add_generator(&mut self, lg: &GeneratorLosses, share: f64) -> Result<()> {
        self.generator_chosen += mean(&lg.chosen)? * share;
        self.generator_rejected += mean(&lg.rejected)? * share;
        Ok(())
    }
}

impl Trainer {
    /// GANPO's λ, 0 without GANPO.
    pub(crate) fn ganpo_lambda(&self) -> f64 {
        self.ganpo.as_ref().map_or(0.0, |g| g.settings.lambda)
    }

    /// The preference loss of one micro-batch, with its metrics added to `sums` at weight `share`.
    pub(crate) fn preference_loss(
        &mut self,
        out: &PairOutputs,
        reference: Option<&PairOutputs>,
        sums: &mut SumMetrics,
        share: f64,
    ) -> Result<LossOutput> {
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
        let logged = self.loss.logged_logps(&inputs)?;
        sums.add(out, &logged, &lo, share)?;
        Ok(lo)
    }

    /// Clips the policy's summed gradients, refuses a non-finite loss or gradient, and steps the
    /// policy's AdamW. Returns the pre-clip norm and the learning rate used.
    pub(crate) fn policy_update(&mut self, mut grads: GradStore, loss: f64) -> Result<(f64, f64)> {
        let vars = self.policy.vars().to_vec();
        let max_norm = (self.config.training.max_grad_norm > 0.0)
            .then_some(self.config.training.max_grad_norm);
        let norm = clip_grad_norm(&mut grads, &vars, max_norm)?;
        if !loss.is_finite() || !norm.is_finite() {
            return Err(Error::Training(format!(
                "non-finite {} at optimizer step {} (loss {loss}, grad_norm {norm}); the policy was not updated — lower the learning rate or check the data",
                if loss.is_finite() { "gradient" } else { "loss" },
                self.step + 1
            )));
        }
        let lr = self.schedule.lr(self.step);
        self.optimizer.step(&grads, lr)?;
        Ok((norm, lr))
    }

    /// The metrics every step reports: TRL's (`loss`, `grad_norm`, `learning_rate`, `num_tokens`,
    /// `rewards/*`, `logps/*`, `logits/*`) and, with GANPO, the generator term and running means.
    pub(crate) fn step_metrics(
        &self,
        m: &mut Metrics,
        micro: &[BatchTensors],
        sums: &StepSums,
        norm: f64,
        lr: f64,
    ) -> Result<()> {
        sums.preference.write_prefixed(m, "");
        m.insert("loss".into(), sums.loss(self.ganpo_lambda()));
        m.insert("grad_norm".into(), norm);
        m.insert("learning_rate".into(), lr);
        let mut tokens = 0.0;
        for b in micro {
            tokens += scalar(&b.attention_mask.to_dtype(DType::F64)?.sum_all()?)?;
        }
        m.insert("num_tokens".into(), tokens);
        let Some(g) = &self.ganpo else {
            return Ok(());
        };
        m.insert("loss/preference".into(), sums.preference.loss());
        m.insert("adv/loss".into(), sums.generator());
        m.insert("disc/g_loss_chosen".into(), sums.generator_chosen);
        m.insert("disc/g_loss_rejected".into(), sums.generator_rejected);
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
        Ok(())
    }
}
