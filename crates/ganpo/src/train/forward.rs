//! The forward half of a preference step: one pass of a model over a `[chosen; rejected]` batch,
//! split into its chosen and rejected halves.

use candle_core::Tensor;

use crate::Result;
use crate::logps::{SequenceLogps, sequence_logps, sequence_logps_from_hidden};
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

/// Mean of the per-position mean logits `per_position` (`[n, T]`) over positions where `mask`
/// (`[n, T]`, shifted) is 1, without gradient; 0 when the mask is empty.
fn masked_mean_logit(per_position: &Tensor, mask: &Tensor) -> Result<f64> {
    let per_position = per_position.detach();
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

/// What a model pass produced: the final hidden states (log-probs then come from the fused chunked
/// LM head), or full logits when WPO needs every position's distribution.
#[derive(Debug, Clone)]
pub enum ModelPass {
    /// Final hidden states `[2B, T, d]`.
    Hidden(Tensor),
    /// Full output, logits included.
    Logits(ModelOutput),
}

impl ModelPass {
    /// Runs `model` over the batch: the decoder only, or with the LM head when `with_wpo`.
    pub fn run(
        model: &CausalLm,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        with_wpo: bool,
    ) -> Result<Self> {
        Ok(if with_wpo {
            ModelPass::Logits(model.forward(input_ids, attention_mask)?)
        } else {
            ModelPass::Hidden(model.forward_hidden(input_ids, attention_mask)?)
        })
    }
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
    let pass = ModelPass::run(model, input_ids, attention_mask, with_wpo)?;
    pair_outputs(model, &pass, input_ids, loss_mask)
}

/// The second half of [`pair_forward`]: sequence log-probs of a model pass over the batch (and WPO
/// weights when it holds logits), split into chosen and rejected halves.
pub fn pair_outputs(
    model: &CausalLm,
    pass: &ModelPass,
    input_ids: &Tensor,
    loss_mask: &Tensor,
) -> Result<PairOutputs> {
    let rows = input_ids.dim(0)?;
    let b = rows / 2;
    let (last_hidden, seq, per_position_logit, wpo_log_weights) = match pass {
        ModelPass::Logits(out) => {
            let seq = sequence_logps(&out.logits, input_ids, loss_mask)?;
            let wpo = crate::logps::wpo_log_weights(&out.logits, &seq)?;
            let mean = out.logits.detach().mean(2)?;
            (out.last_hidden.clone(), seq, mean, Some(wpo))
        }
        ModelPass::Hidden(hidden) => {
            let (seq, mean) = sequence_logps_from_hidden(
                hidden,
                model.lm_head_weight(),
                model.config().final_logit_softcapping,
                input_ids,
                loss_mask,
            )?;
            (hidden.clone(), seq, mean, None)
        }
    };
    let half = |t: &Tensor, i: usize| t.narrow(0, i * b, b);
    let chosen_mean_logit =
        masked_mean_logit(&half(&per_position_logit, 0)?, &half(&seq.mask, 0)?)?;
    let rejected_mean_logit =
        masked_mean_logit(&half(&per_position_logit, 1)?, &half(&seq.mask, 1)?)?;
    Ok(PairOutputs {
        chosen_logps: half(&seq.logps, 0)?,
        rejected_logps: half(&seq.logps, 1)?,
        chosen_counts: half(&seq.counts, 0)?,
        rejected_counts: half(&seq.counts, 1)?,
        chosen_hidden: half(&last_hidden, 0)?,
        rejected_hidden: half(&last_hidden, 1)?,
        chosen_mean_logit,
        rejected_mean_logit,
        wpo_log_weights,
        sequence: seq,
    })
}
