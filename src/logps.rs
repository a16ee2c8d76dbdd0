//! Per-sequence completion log-probs: the only place where labels are shifted and the completion
//! (loss) mask is applied. Training and evaluation both go through [`sequence_logps`].
//!
//! Token `t` is predicted by the logits at position `t − 1`, so the log-prob of token `t` counts
//! when `loss_mask[t] = 1`. On the CPU the log-prob of each label is computed by a fused op
//! ([`label_logprobs`]) that keeps no `[batch, seq, vocab]` intermediate for the backward pass:
//! its backward recomputes `softmax − onehot` row by row from the logits.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, D, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::kernels::row_logsumexp;
use crate::kernels::storage::{contiguous_f32, contiguous_u32};
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

/// `log softmax(logits)[label]` for every position: `[batch, seq, vocab]` × `[batch, seq]` → `[batch, seq]`, f32.
pub fn label_logprobs(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    // f64 (used by gradient checks) keeps full precision through the composition; everything else
    // is computed in f32.
    let dtype = loss_dtype(logits);
    let logits = logits.to_dtype(dtype)?;
    let labels = labels.to_dtype(DType::U32)?;
    if logits.device().is_cpu() && dtype == DType::F32 {
        Ok(logits
            .contiguous()?
            .apply_op2(&labels.contiguous()?, LabelLogprob)?)
    } else {
        // Other devices: the differentiable composition (keeps a log-softmax for backward).
        let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        Ok(lsm
            .gather(&labels.unsqueeze(D::Minus1)?, D::Minus1)?
            .squeeze(D::Minus1)?)
    }
}

/// Log-probs are computed in f64 for f64 logits, else in f32.
fn loss_dtype(logits: &Tensor) -> DType {
    if logits.dtype() == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// Forward: `out[r] = x[r, label[r]] − logsumexp(x[r, :])`.
struct LabelLogprob;

impl CustomOp2 for LabelLogprob {
    fn name(&self) -> &'static str {
        "label-logprob"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let logits = contiguous_f32(s1, l1, "logits")?;
        let labels = contiguous_u32(s2, l2, "labels")?;
        let dims = l1.shape().dims();
        let vocab = *dims.last().unwrap_or(&0);
        if vocab == 0 || logits.len() != labels.len() * vocab {
            candle_core::bail!(
                "label-logprob: logits {:?} do not match labels {:?}",
                dims,
                l2.shape().dims()
            );
        }
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= vocab) {
            candle_core::bail!("label-logprob: label {bad} outside the vocabulary of {vocab}");
        }
        let out: Vec<f32> = logits
            .par_chunks(vocab)
            .zip(labels.par_iter())
            .map(|(row, &label)| row[label as usize] - row_logsumexp(row))
            .collect();
        Ok((CpuStorage::F32(out), l2.shape().clone()))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        labels: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_logits =
            logits.apply_op3_no_bwd(labels, &grad.contiguous()?, &LabelLogprobGrad)?;
        Ok((Some(grad_logits), None))
    }
}

/// Backward: `∂out[r]/∂x[r, v] = g[r] · (1[v = label[r]] − softmax(x[r, :])[v])`.
struct LabelLogprobGrad;

impl CustomOp3 for LabelLogprobGrad {
    fn name(&self) -> &'static str {
        "label-logprob-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let logits = contiguous_f32(s1, l1, "logits")?;
        let labels = contiguous_u32(s2, l2, "labels")?;
        let grad = contiguous_f32(s3, l3, "grad")?;
        let vocab = *l1.shape().dims().last().unwrap_or(&0);
        let mut out = vec![0f32; logits.len()];
        out.par_chunks_mut(vocab)
            .zip(logits.par_chunks(vocab))
            .zip(labels.par_iter().zip(grad.par_iter()))
            .for_each(|((o, row), (&label, &g))| {
                if g == 0.0 {
                    return; // masked position: the gradient row stays zero
                }
                let lse = row_logsumexp(row);
                for (o, &x) in o.iter_mut().zip(row) {
                    *o = -g * crate::kernels::vexp::exp(x - lse);
                }
                o[label as usize] += g;
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
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
