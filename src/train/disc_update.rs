//! The GANPO discriminator update of a training step: the batch's detached latents (chosen and
//! rejected halves, policy and reference, zero-padded across micro-batches), the discriminators'
//! losses and their gradients, the update itself, and the `disc/*` metrics.

use candle_core::{DType, Tensor};

use crate::Result;
use crate::config::train::Pooling;
use crate::data::BatchTensors;
use crate::ganpo::{DiscriminatorScores, Latents, discriminator_step};
use crate::train::forward::PairOutputs;
use crate::train::metrics::Metrics;
use crate::train::step::{ordering_accuracy, scalar};
use crate::train::trainer::GanpoParts;

/// The discriminators' `[2B, T]` mask for a batch under `pooling`.
pub(crate) fn pooling_mask(batch: &BatchTensors, pooling: Pooling) -> Result<Tensor> {
    Ok(match pooling {
        Pooling::Sequence => batch.attention_mask.to_dtype(DType::F32)?,
        Pooling::Completion => batch.loss_mask.to_dtype(DType::F32)?,
        Pooling::Unmasked => batch.attention_mask.ones_like()?.to_dtype(DType::F32)?,
    })
}

/// Pads `[B, T, ...]` with zeros to `[B, len, ...]` along dim 1.
fn pad_seq(t: &Tensor, len: usize) -> Result<Tensor> {
    let cur = t.dim(1)?;
    if cur == len {
        return Ok(t.clone());
    }
    let mut shape = t.dims().to_vec();
    shape[1] = len - cur;
    Ok(Tensor::cat(
        &[t, &Tensor::zeros(shape, t.dtype(), t.device())?],
        1,
    )?)
}

/// Detached latents and masks of the chosen and rejected halves.
pub(crate) struct LatentBatch {
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    chosen_mask: Tensor,
    rejected_mask: Tensor,
}

impl LatentBatch {
    pub(crate) fn new(
        policy: &PairOutputs,
        reference: &PairOutputs,
        mask: &Tensor,
    ) -> Result<Self> {
        let b = policy.chosen_logps.dim(0)?;
        Ok(LatentBatch {
            policy_chosen: policy.chosen_hidden.detach(),
            policy_rejected: policy.rejected_hidden.detach(),
            ref_chosen: reference.chosen_hidden.detach(),
            ref_rejected: reference.rejected_hidden.detach(),
            chosen_mask: mask.narrow(0, 0, b)?,
            rejected_mask: mask.narrow(0, b, b)?,
        })
    }

    /// Concatenates micro-batches along the batch, zero-padding to the longest sequence (padded
    /// positions carry mask 0, so masked pooling ignores them).
    pub(crate) fn concat(parts: &[LatentBatch]) -> Result<Self> {
        let len = parts
            .iter()
            .map(|p| p.policy_chosen.dim(1).unwrap_or(0))
            .max()
            .unwrap_or(0);
        let cat = |f: &dyn Fn(&LatentBatch) -> &Tensor| -> Result<Tensor> {
            let padded = parts
                .iter()
                .map(|p| pad_seq(f(p), len))
                .collect::<Result<Vec<_>>>()?;
            Ok(Tensor::cat(&padded, 0)?)
        };
        Ok(LatentBatch {
            policy_chosen: cat(&|p| &p.policy_chosen)?,
            policy_rejected: cat(&|p| &p.policy_rejected)?,
            ref_chosen: cat(&|p| &p.ref_chosen)?,
            ref_rejected: cat(&|p| &p.ref_rejected)?,
            chosen_mask: cat(&|p| &p.chosen_mask)?,
            rejected_mask: cat(&|p| &p.rejected_mask)?,
        })
    }

    fn latents(&self) -> Latents<'_> {
        Latents {
            policy_chosen: &self.policy_chosen,
            policy_rejected: &self.policy_rejected,
            ref_chosen: &self.ref_chosen,
            ref_rejected: &self.ref_rejected,
            chosen_mask: &self.chosen_mask,
            rejected_mask: &self.rejected_mask,
        }
    }
}

fn disc_metrics(
    m: &mut Metrics,
    scores: &DiscriminatorScores,
    plus: f64,
    minus: f64,
) -> Result<()> {
    m.insert("disc/loss_chosen".into(), plus);
    m.insert("disc/loss_rejected".into(), minus);
    let s = scores;
    m.insert(
        "disc/acc_chosen_ref_over_policy".into(),
        ordering_accuracy(&s.plus_ref_chosen, &s.plus_policy)?,
    );
    m.insert(
        "disc/acc_chosen_policy_over_ref_rejected".into(),
        ordering_accuracy(&s.plus_policy, &s.plus_ref_rejected)?,
    );
    m.insert(
        "disc/acc_rejected_ref_over_policy".into(),
        ordering_accuracy(&s.minus_ref_rejected, &s.minus_policy)?,
    );
    m.insert(
        "disc/acc_rejected_policy_over_ref_chosen".into(),
        ordering_accuracy(&s.minus_policy, &s.minus_ref_chosen)?,
    );
    Ok(())
}

/// Scores the latents, updates the running means, and back-propagates the discriminator losses
/// (scaled by `scale`). Returns their gradients (discriminator variables only: latents are detached).
pub(crate) fn disc_losses(
    g: &mut GanpoParts,
    batch: &LatentBatch,
    scale: f64,
    m: &mut Metrics,
) -> Result<candle_core::backprop::GradStore> {
    let step = discriminator_step(&mut g.plus, &mut g.minus, &batch.latents(), &mut g.means)?;
    let plus = step.losses.plus.mean_all()?;
    let minus = step.losses.minus.mean_all()?;
    disc_metrics(m, &step.scores, scalar(&plus)?, scalar(&minus)?)?;
    // D⁺ and D⁻ share no parameters, so one backward of the sum trains each on its own loss.
    let mut grads = ((plus + minus)? * scale)?.backward()?;
    g.plus.take_grads(&mut grads)?;
    g.minus.take_grads(&mut grads)?;
    Ok(grads)
}

pub(crate) fn disc_apply(
    g: &mut GanpoParts,
    grads: &candle_core::backprop::GradStore,
    step: u64,
) -> Result<()> {
    let lr = g.schedule.lr(step);
    g.opt_plus.step(grads, lr)?;
    g.opt_minus.step(grads, lr)
}
