//! `x ⊙ m · s` for a constant mask `m` (inverted dropout: `m` ∈ {0, 1}, `s = 1/(1 − p)`), one pass
//! forward and one pass backward, with a gradient for `x` only.
//!
//! Composed, this is a `mul` and an `affine`; candle's backward of `mul` also computes and
//! accumulates a gradient for the constant mask (two more full-size passes and a zero fill),
//! which nothing reads.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::op_io::equal_f32_inputs;
use super::{buffer, fused};
use crate::Result;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// `x ⊙ mask · scale`, differentiable in `x`; `mask` (same shape) is treated as a constant.
pub fn masked_scale(x: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    if fused(&[x, mask]) && x.dims() == mask.dims() {
        Ok(x.contiguous()?
            .apply_op2(&mask.detach().contiguous()?, MaskedScale { scale })?)
    } else {
        masked_scale_composed(x, mask, scale)
    }
}

/// The same function from differentiable candle primitives.
pub fn masked_scale_composed(x: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    Ok((x * mask.detach())?.affine(scale, 0.0)?)
}

/// `a ⊙ m · s` over contiguous f32 buffers.
fn apply(a: &[f32], m: &[f32], s: f32) -> Vec<f32> {
    let mut out = buffer::uninit(a.len());
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(m.par_chunks(CHUNK)))
        .for_each(|(o, (a, m))| {
            for ((o, &a), &m) in o.iter_mut().zip(a).zip(m) {
                o.write(a * m * s);
            }
        });
    // SAFETY: the chunks cover `out` and each slot of a chunk is written.
    unsafe { buffer::assume_init(out) }
}

struct MaskedScale {
    scale: f64,
}

impl CustomOp2 for MaskedScale {
    fn name(&self) -> &'static str {
        "fused-masked-scale"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let [x, m] = equal_f32_inputs(self.name(), [(s1, l1, "input"), (s2, l2, "mask")])?;
        let out = apply(x, m, self.scale as f32);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        mask: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // The backward is the same map applied to the incoming gradient.
        let dx = grad
            .contiguous()?
            .apply_op2_no_bwd(mask, &MaskedScale { scale: self.scale })?;
        Ok((Some(dx), None))
    }
}

/// `residual + x ⊙ mask · scale`: a residual connection around inverted dropout, as one op.
/// Differentiable in `residual` (the gradient passes through) and `x`; `mask` is a constant.
///
/// Composed, the sum is another op whose backward adds the incoming gradient into two fresh zero
/// tensors; here the residual's gradient is the incoming gradient itself, and the values equal
/// the composition's bit for bit (the same `x · m · s` is added).
pub fn residual_masked_scale(
    residual: &Tensor,
    x: &Tensor,
    mask: &Tensor,
    scale: f64,
) -> Result<Tensor> {
    if fused(&[residual, x, mask]) && x.dims() == mask.dims() && residual.dims() == x.dims() {
        Ok(residual.contiguous()?.apply_op3(
            &x.contiguous()?,
            &mask.detach().contiguous()?,
            ResidualMaskedScale { scale },
        )?)
    } else {
        residual_masked_scale_composed(residual, x, mask, scale)
    }
}

/// The same function from differentiable candle primitives.
pub fn residual_masked_scale_composed(
    residual: &Tensor,
    x: &Tensor,
    mask: &Tensor,
    scale: f64,
) -> Result<Tensor> {
    Ok((residual + masked_scale_composed(x, mask, scale)?)?)
}

struct ResidualMaskedScale {
    scale: f64,
}

impl CustomOp3 for ResidualMaskedScale {
    fn name(&self) -> &'static str {
        "fused-residual-masked-scale"
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
        let [r, x, m] = equal_f32_inputs(
            self.name(),
            [(s1, l1, "residual"), (s2, l2, "input"), (s3, l3, "mask")],
        )?;
        let s = self.scale as f32;
        let mut out = buffer::uninit(x.len());
        out.par_chunks_mut(CHUNK)
            .zip(
                r.par_chunks(CHUNK)
                    .zip(x.par_chunks(CHUNK).zip(m.par_chunks(CHUNK))),
            )
            .for_each(|(o, (r, (x, m)))| {
                for (((o, &r), &x), &m) in o.iter_mut().zip(r).zip(x).zip(m) {
                    o.write(r + x * m * s);
                }
            });
        // SAFETY: the chunks cover `out` and each slot of a chunk is written.
        let out = unsafe { buffer::assume_init(out) };
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _residual: &Tensor,
        _x: &Tensor,
        mask: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = grad
            .contiguous()?
            .apply_op2_no_bwd(mask, &MaskedScale { scale: self.scale })?;
        Ok((Some(grad.clone()), Some(dx), None))
    }
}
