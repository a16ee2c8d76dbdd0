//! The attention softmax `p = softmax(s · scale + mask)` over the last dimension, with the additive
//! mask broadcast over heads. Backward: `∂L/∂s = scale · p ⊙ (g − Σ_j g_j p_j)`, computed from the
//! saved probabilities alone (the scores and the mask are not kept).

use candle_core::{CpuStorage, CustomOp2, D, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::op_io::{equal_f32_inputs, f32_inputs};
use super::{fused, rows_per_task, vexp};
use crate::Result;

/// `softmax(scores · scale + mask)` for `scores` `[batch, heads, q_len, k_len]` and an additive
/// `mask` `[batch, 1, q_len, k_len]` (0 where attending is allowed, a large negative number elsewhere).
pub fn masked_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, _, q, k) = scores.dims4()?;
    if fused(&[scores, mask]) && mask.dims() == [b, 1, q, k] {
        Ok(scores
            .contiguous()?
            .apply_op2(&mask.contiguous()?, MaskedSoftmax { scale })?)
    } else {
        masked_softmax_composed(scores, mask, scale)
    }
}

/// The same function from differentiable candle primitives.
pub fn masked_softmax_composed(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let z = (scores * scale)?.broadcast_add(mask)?;
    // `ops::softmax` is differentiable; `softmax_last_dim` is not.
    Ok(candle_nn::ops::softmax(&z, D::Minus1)?)
}

/// Turns a row of scores into probabilities in place: `p = softmax(z)` with `z = s · scale + mask`;
/// returns `(max z, 1 / Σ exp(z − max))`.
#[inline(always)]
pub(super) fn softmax_row(row: &mut [f32], mask: &[f32], scale: f32) -> (f32, f32) {
    for (z, &m) in row.iter_mut().zip(mask) {
        *z = *z * scale + m;
    }
    let max = vexp::max(row);
    let inv = 1.0 / vexp::exp_shifted_in_place(row, max);
    for p in row.iter_mut() {
        *p *= inv;
    }
    (max, inv)
}

struct MaskedSoftmax {
    scale: f64,
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "fused-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let [s, m] = f32_inputs(self.name(), [(s1, l1, "scores"), (s2, l2, "mask")])?;
        let (_, h, q, k) = l1.shape().dims4()?;
        let scale = self.scale as f32;
        let rows = s.len() / k;
        let per_task = rows_per_task(rows, k);
        // The scores are copied to the output and turned into probabilities there.
        let mut out = s.to_vec();
        out.par_chunks_mut(per_task * k)
            .enumerate()
            .for_each(|(task, o)| {
                for (i, o) in o.chunks_exact_mut(k).enumerate() {
                    let row = task * per_task + i; // ((batch · h) + head) · q + query
                    let (batch, query) = (row / (h * q), row % q);
                    softmax_row(
                        o,
                        &m[(batch * q + query) * k..(batch * q + query + 1) * k],
                        scale,
                    );
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _scores: &Tensor,
        _mask: &Tensor,
        probs: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let ds = probs.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad { scale: self.scale })?;
        Ok((Some(ds), None))
    }
}

/// `scale · p ⊙ (g − p·g)` row by row.
struct SoftmaxGrad {
    scale: f64,
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "fused-masked-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let [p, g] = equal_f32_inputs(self.name(), [(s1, l1, "output"), (s2, l2, "gradient")])?;
        let k = *l1.shape().dims().last().unwrap_or(&1);
        let per_task = rows_per_task(p.len() / k.max(1), k) * k;
        let scale = self.scale as f32;
        let mut out = vec![0f32; p.len()];
        out.par_chunks_mut(per_task)
            .zip(p.par_chunks(per_task).zip(g.par_chunks(per_task)))
            .for_each(|(o, (p, g))| {
                for ((o, p), g) in o
                    .chunks_exact_mut(k)
                    .zip(p.chunks_exact(k))
                    .zip(g.chunks_exact(k))
                {
                    let pg: f32 = p.iter().zip(g).map(|(p, g)| p * g).sum();
                    for ((o, &p), &g) in o.iter_mut().zip(p).zip(g) {
                        *o = scale * p * (g - pg);
                    }
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
