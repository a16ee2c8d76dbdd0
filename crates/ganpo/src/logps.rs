//! Per-sequence completion log-probs: the only place where labels are shifted and the completion
//! (loss) mask is applied. Training and evaluation both go through [`sequence_logps`].
//!
//! Token `t` is predicted by the logits at position `t − 1`, so the log-prob of token `t` counts
//! when `loss_mask[t] = 1`. On the CPU the log-prob of each label is computed by a fused op
//! ([`crate::kernels::label_logprobs`]) that keeps no `[batch, seq, vocab]` intermediate for the backward pass:
//! its backward recomputes `softmax − onehot` row by row from the logits.

use candle_core::{D, DType, Tensor};

use crate::kernels::label_logprobs;
use crate::{Error, Result};

/// Per-sequence summed completion log-probs and token counts.
#[derive(Debug, Clone)]
pub struct SequenceLogps {
    /// `Σ_t log π(y_t | x, y_<t)` over completion tokens, `[batch]` (differentiable).
    pub logps: Tensor,
    /// Number of completion tokens per sequence, `[batch]` f32.
    pub counts: Tensor,
    /// Per-token log-probs aligned with the shifted mask: entry `t` is `log π(token t+1)`, zero where
    /// `mask` is zero, `[batch, seq]` (differentiable). Used by token-level terms such as LD-DPO.
    pub token_logps: Tensor,
    /// The shifted completion mask: entry `t` is 1 when token `t+1` is a completion token, `[batch, seq]` f32.
    pub mask: Tensor,
}

/// Computes summed completion log-probs of `input_ids` (`[batch, seq]` u32) under `logits`
/// (`[batch, seq, vocab]`), counting tokens where `loss_mask` (`[batch, seq]`, 1 = completion) is set.
pub fn sequence_logps(
    logits: &Tensor,
    input_ids: &Tensor,
    loss_mask: &Tensor,
) -> Result<SequenceLogps> {
    let (b, t, _) = logits.dims3()?;
    if input_ids.dims() != [b, t] || loss_mask.dims() != [b, t] {
        return Err(Error::Config(format!(
            "sequence_logps: logits {:?}, input_ids {:?} and loss_mask {:?} disagree",
            logits.dims(),
            input_ids.dims(),
            loss_mask.dims()
        )));
    }
    if t == 0 {
        return Err(Error::Config("sequence_logps: empty sequences".into()));
    }
    let device = logits.device();
    // Shift left by one: position t predicts token t + 1. The last position predicts nothing; it
    // gets label 0 and mask 0.
    let labels = Tensor::cat(
        &[
            input_ids.narrow(1, 1, t - 1)?,
            Tensor::zeros((b, 1), DType::U32, device)?,
        ],
        1,
    )?;
    let mask = loss_mask.to_dtype(loss_dtype(logits))?;
    let mask = Tensor::cat(
        &[
            mask.narrow(1, 1, t - 1)?,
            Tensor::zeros((b, 1), loss_dtype(logits), device)?,
        ],
        1,
    )?;
    let token_logps = (label_logprobs(logits, &labels)? * &mask)?;
    Ok(SequenceLogps {
        logps: token_logps.sum(1)?,
        counts: mask.sum(1)?,
        token_logps,
        mask,
    })
}

/// [`sequence_logps`] from the final hidden states (`[batch, seq, d]`, after the final norm) and
/// the LM head `weight` (`[vocab, d]`, with Gemma-2's final `softcap`), through the fused chunked
/// head ([`crate::kernels::lm_head_logps`]): the `[batch, seq, vocab]` logits are never built, and
/// only completion positions are computed. Also returns each position's mean logit over the
/// vocabulary (`[batch, seq]`, no gradient; 0 outside the completion), TRL's `logits/*` metrics.
pub fn sequence_logps_from_hidden(
    last_hidden: &Tensor,
    weight: &Tensor,
    softcap: Option<f64>,
    input_ids: &Tensor,
    loss_mask: &Tensor,
) -> Result<(SequenceLogps, Tensor)> {
    let (b, t, d) = last_hidden.dims3()?;
    if input_ids.dims() != [b, t] || loss_mask.dims() != [b, t] || t == 0 {
        return Err(Error::Config(format!(
            "sequence_logps_from_hidden: hidden {:?}, input_ids {:?} and loss_mask {:?} disagree",
            last_hidden.dims(),
            input_ids.dims(),
            loss_mask.dims()
        )));
    }
    let ids: Vec<Vec<u32>> = input_ids.to_dtype(DType::U32)?.to_vec2()?;
    let completion: Vec<Vec<f32>> = loss_mask.to_dtype(DType::F32)?.to_vec2()?;
    // Position t predicts token t + 1; the last position predicts nothing.
    let mut labels = Vec::with_capacity(b * t);
    let mut active = Vec::with_capacity(b * t);
    for (row, mask) in ids.iter().zip(&completion) {
        for p in 0..t {
            let next = (p + 1 < t).then(|| (row[p + 1], mask[p + 1] != 0.0));
            labels.push(next.map_or(0, |n| n.0));
            active.push(next.is_some_and(|n| n.1));
        }
    }
    let hidden = last_hidden.reshape((b * t, d))?;
    let head = crate::kernels::lm_head_logps(&hidden, weight, &labels, &active, softcap)?;
    let dtype = loss_dtype(last_hidden);
    let mask: Vec<f32> = active.iter().map(|&a| f32::from(u8::from(a))).collect();
    let mask = Tensor::from_vec(mask, (b, t), last_hidden.device())?.to_dtype(dtype)?;
    let token_logps = head.logps.reshape((b, t))?.to_dtype(dtype)?;
    Ok((
        SequenceLogps {
            logps: token_logps.sum(1)?,
            counts: mask.sum(1)?,
            token_logps,
            mask,
        },
        head.mean_logits.reshape((b, t))?,
    ))
}

/// Log-probs are computed in f64 for f64 logits, else in f32.
fn loss_dtype(logits: &Tensor) -> DType {
    if logits.dtype() == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// WPO's per-sequence log-weights (Zhou et al. 2024, eq. 2), without gradient:
/// `log w(y) = (1/n(y)) Σ_t [log π(y_t | ·) − log Σ_v π(v | ·)²]` over completion tokens, with
/// `log Σ_v π(v)² = logsumexp(2z) − 2·logsumexp(z)` computed from the logits in f32.
/// `seq` must come from [`sequence_logps`] on the same `logits`. Returns `[batch]`.
pub fn wpo_log_weights(logits: &Tensor, seq: &SequenceLogps) -> Result<Tensor> {
    let z = logits.detach().to_dtype(DType::F32)?;
    let lse = |x: &Tensor| -> Result<Tensor> {
        let max = x.max_keepdim(D::Minus1)?;
        Ok((x
            .broadcast_sub(&max)?
            .exp()?
            .sum_keepdim(D::Minus1)?
            .log()?
            + max)?
            .squeeze(D::Minus1)?)
    };
    let log_sq = (lse(&(&z * 2.0)?)? - (lse(&z)? * 2.0)?)?; // [batch, seq]
    let per_token = (seq.token_logps.detach() - log_sq)?;
    let summed = (per_token * &seq.mask)?.sum(1)?;
    Ok(summed.broadcast_div(&seq.counts.clamp(1.0, f64::INFINITY)?)?)
}
