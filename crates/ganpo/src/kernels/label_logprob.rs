//! The log-prob of each position's label, `log softmax(x)[label] = x[label] − logsumexp(x)`, fused
//! so that no `[batch, seq, vocab]` intermediate is kept for the backward pass: the backward
//! recomputes `softmax − onehot` row by row from the logits,
//! `∂out[r]/∂x[r, v] = g[r] · (1[v = label[r]] − softmax(x[r, :])[v])`.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, D, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::lm_head::row_logsumexp;
use super::op_io::f32_inputs;
use super::storage::contiguous_u32;
use crate::Result;

/// `log softmax(logits)[label]` for every position: `[batch, seq, vocab]` × `[batch, seq]` → `[batch, seq]`, f32.
pub fn label_logprobs(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    // f64 (used by gradient checks) keeps full precision through the composition; everything else
    // is computed in f32.
    let dtype = if logits.dtype() == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
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
        let [logits] = f32_inputs(self.name(), [(s1, l1, "logits")])?;
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
        let [logits, grad] = f32_inputs(self.name(), [(s1, l1, "logits"), (s3, l3, "gradient")])?;
        let labels = contiguous_u32(s2, l2, "labels")?;
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
                    *o = -g * super::vexp::exp(x - lse);
                }
                o[label as usize] += g;
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
