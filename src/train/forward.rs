//! The forward half of a preference step: one pass of a model over a `[chosen; rejected]` batch,
//! split into its chosen and rejected halves.

use candle_core::Tensor;

use crate::Result;
use crate::logps::{SequenceLogps, sequence_logps};
use crate::model::{CausalLm, ModelOutput};

/// One model's outputs on a `[chosen; rejected]` batch of `2B` rows.
#[derive(Debug, Clone)]
pub struct PairOutputs {
    /// Summed completion log-probs of the chosen rows, `[B]`.
    pub chosen_logps: Tensor,
    /// Summed completion log-probs of the rejected rows, `[B]`.
    pub rejected_logps: Tensor,
    /// Completion token counts of the chosen rows, `[B]`.
    pub chosen_counts: Tensor,
    /// Completion token counts of the rejected rows, `[B]`.
    pub rejected_counts: Tensor,
    /// Per-token log-probs and the shifted mask of all rows (for token-level terms such as LD-DPO).
    pub sequence: SequenceLogps,
    /// Last hidden states of the chosen rows, `[B, T, d]`.
    pub chosen_hidden: Tensor,
    /// Last hidden states of the rejected rows, `[B, T, d]`.
    pub rejected_hidden: Tensor,
    /// Mean logit over the vocabulary and completion positions of the chosen rows (TRL's
    /// `logits/chosen`), detached.
    pub chosen_mean_logit: f64,
    /// Same for the rejected rows (`logits/rejected`).
    pub rejected_mean_logit: f64,
    /// WPO log-weights of all `2B` rows, when requested.
    pub wpo_log_weights: Option<Tensor>,
}

/// Mean of `logits` (`[n, T, V]`) over the vocabulary and over positions where `mask` (`[n, T]`,
/// shifted) is 1, without gradient; 0 when the mask is empty.
fn masked_mean_logit(logits: &Tensor, mask: &Tensor) -> Result<f64> {
    let per_position = logits.detach().mean(2)?; // [n, T]
    let total = (&per_position * mask.to_dtype(per_position.dtype())?)?
        .sum_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_scalar::<f64>()?;
    let count = mask
        .sum_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_scalar::<f64>()?;
    Ok(if count > 0.0 { total / count } else { 0.0 })
}

/// Runs `model` on the batch and splits the results. The graph is kept when the model is
/// trainable; a frozen model builds none.
pub fn pair_forward(
    model: &CausalLm,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    loss_mask: &Tensor,
    with_wpo: bool,
) -> Result<PairOutputs> {
    let out = model.forward(input_ids, attention_mask)?;
    pair_outputs(&out, input_ids, loss_mask, with_wpo)
}

/// The second half of [`pair_forward`]: sequence log-probs of a model's output on the batch,
/// split into chosen and rejected halves.
pub fn pair_outputs(
    out: &ModelOutput,
    input_ids: &Tensor,
    loss_mask: &Tensor,
    with_wpo: bool,
) -> Result<PairOutputs> {
    let rows = input_ids.dim(0)?;
    let b = rows / 2;
    let seq = sequence_logps(&out.logits, input_ids, loss_mask)?;
    let wpo_log_weights = if with_wpo {
        Some(crate::logps::wpo_log_weights(&out.logits, &seq)?)
    } else {
        None
    };
    let half = |t: &Tensor, i: usize| t.narrow(0, i * b, b);
    let chosen_mean_logit = masked_mean_logit(&half(&out.logits, 0)?, &half(&seq.mask, 0)?)?;
    let rejected_mean_logit = masked_mean_logit(&half(&out.logits, 1)?, &half(&seq.mask, 1)?)?;
    Ok(PairOutputs {
        chosen_logps: half(&seq.logps, 0)?,
        rejected_logps: half(&seq.logps, 1)?,
        chosen_counts: half(&seq.counts, 0)?,
        rejected_counts: half(&seq.counts, 1)?,
        chosen_hidden: half(&out.last_hidden, 0)?,
        rejected_hidden: half(&out.last_hidden, 1)?,
        chosen_mean_logit,
        rejected_mean_logit,
        wpo_log_weights,
        sequence: seq,
    })
}
