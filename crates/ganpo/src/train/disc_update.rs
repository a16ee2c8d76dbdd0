//! The GANPO discriminator update of a training step: the batch's detached latents (chosen and
//! rejected halves, policy and reference, zero-padded across micro-batches), the discriminators'
//! losses and their gradients, the update itself, and the `disc/*` metrics.

use candle_core::{DType, Tensor};

use crate::Result;
use crate::config::train::Pooling;
use crate::data::BatchTensors;
use crate::ganpo::{Latents, discriminator_step};
use crate::train::forward::PairOutputs;
use crate::train::metrics::{Metrics, ordering_accuracy, scalar};
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
    /// The latents of one micro-batch, detached here so that they do not hold the policy's forward
    /// graph alive (with k > 1 that pass is dropped at once). [`crate::ganpo::discriminator_step`]
    /// detaches whatever it is given too: that is its own guarantee, and a detach is a new handle
    /// to the same storage, not a copy.
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

/// The `disc/*` values of discriminator steps: losses summed and accuracies averaged with the
/// weights given to [`DiscReport::add`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DiscReport {
    loss_chosen: f64,
    loss_rejected: f64,
    accuracies: [f64; 4],
}

impl DiscReport {
    /// Adds `other`'s losses as they are and its accuracies weighted by `share`.
    pub(crate) fn add(&mut self, other: &DiscReport, share: f64) {
        self.loss_chosen += other.loss_chosen;
        self.loss_rejected += other.loss_rejected;
        for (a, b) in self.accuracies.iter_mut().zip(other.accuracies) {
            *a += b * share;
        }
    }

    pub(crate) fn write(&self, m: &mut Metrics) {
        m.insert("disc/loss_chosen".into(), self.loss_chosen);
        m.insert("disc/loss_rejected".into(), self.loss_rejected);
        let names = [
            "disc/acc_chosen_ref_over_policy",
            "disc/acc_chosen_policy_over_ref_rejected",
            "disc/acc_rejected_ref_over_policy",
            "disc/acc_rejected_policy_over_ref_chosen",
        ];
        for (name, v) in names.into_iter().zip(self.accuracies) {
            m.insert(name.into(), v);
        }
    }
}

/// Scores the latents, updates the running means, and back-propagates the discriminator losses
/// scaled by `scale` (the authors divide by the accumulation steps). Returns their gradients
/// (discriminator variables only: latents are detached) and the scaled losses with the
/// discriminators' ordering accuracies.
pub(crate) fn disc_losses(
    g: &mut GanpoParts,
    batch: &LatentBatch,
    scale: f64,
) -> Result<(candle_core::backprop::GradStore, DiscReport)> {
    let step = discriminator_step(&mut g.plus, &mut g.minus, &batch.latents(), &mut g.means)?;
    let plus = (step.losses.plus.mean_all()? * scale)?;
    let minus = (step.losses.minus.mean_all()? * scale)?;
    let s = &step.scores;
    let report = DiscReport {
        loss_chosen: scalar(&plus)?,
        loss_rejected: scalar(&minus)?,
        accuracies: [
            ordering_accuracy(&s.plus_ref_chosen, &s.plus_policy)?,
            ordering_accuracy(&s.plus_policy, &s.plus_ref_rejected)?,
            ordering_accuracy(&s.minus_ref_rejected, &s.minus_policy)?,
            ordering_accuracy(&s.minus_policy, &s.minus_ref_chosen)?,
        ],
    };
    // D⁺ and D⁻ share no parameters, so one backward of the sum trains each on its own loss.
    let mut grads = (plus + minus)?.backward()?;
    g.plus.take_grads(&mut grads)?;
    g.minus.take_grads(&mut grads)?;
    Ok((grads, report))
}

/// One update of both discriminators after `policy_step` policy optimizer steps; returns the
/// learning rate it used.
pub(crate) fn disc_apply(
    g: &mut GanpoParts,
    grads: &candle_core::backprop::GradStore,
    policy_step: u64,
) -> Result<f64> {
    let lr = g.learning_rate(policy_step);
    g.opt_plus.step(grads, lr)?;
    g.opt_minus.step(grads, lr)?;
    Ok(lr)
}
