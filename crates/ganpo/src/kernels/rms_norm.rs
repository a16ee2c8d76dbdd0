//! RMSNorm `y = x · r · w̃` with `r = 1/√(mean(x²) + ε)` and `w̃ = w` (or `1 + w` for Gemma), over
//! the last dimension.
//!
//! Backward, with `a = ∂L/∂y ⊙ w̃` per row: `∂L/∂x = r·a − x · r³ · (a·x)/D` and
//! `∂L/∂w = Σ_rows ∂L/∂y ⊙ x · r`.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, D, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::op_io::{f32_inputs, packed, unpack};
use super::storage::rows_of;
use super::{fused, rows_per_task};
use crate::Result;

/// RMSNorm of `x` (`[..., dim]`) with `weight` (`[dim]`), computed in at least f32 as Hugging Face
/// does. `add_one` selects Gemma's `(1 + w)` scaling.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64, add_one: bool) -> Result<Tensor> {
    if fused(&[x, weight]) {
        let op = RmsNorm { eps, add_one };
        Ok(x.contiguous()?.apply_op2(&weight.contiguous()?, op)?)
    } else {
        rms_norm_composed(x, weight, eps, add_one)
    }
}

/// The same function composed from differentiable candle primitives (the reference the fused
/// kernel is tested against; used off the CPU and for f64).
pub fn rms_norm_composed(x: &Tensor, weight: &Tensor, eps: f64, add_one: bool) -> Result<Tensor> {
    let dtype = x.dtype();
    // At least f32, as transformers; f64 stays f64 (gradient checks).
    let compute = if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let xf = x.to_dtype(compute)?;
    let inv_rms = (xf.sqr()?.mean_keepdim(D::Minus1)? + eps)?
        .sqrt()?
        .recip()?;
    let normed = xf.broadcast_mul(&inv_rms)?;
    let y = if add_one {
        // Gemma multiplies in f32 and casts afterwards.
        normed
            .broadcast_mul(&(weight.to_dtype(compute)? + 1.0)?)?
            .to_dtype(dtype)?
    } else {
        // Llama casts back to the input dtype before scaling.
        normed
            .to_dtype(dtype)?
            .broadcast_mul(&weight.to_dtype(dtype)?)?
    };
    Ok(y)
}

/// `Σ a_i b_i` with eight independent accumulators, so the loop vectorizes.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

fn inv_rms(row: &[f32], eps: f32) -> f32 {
    1.0 / (dot(row, row) / row.len() as f32 + eps).sqrt()
}

/// The weight the normalized rows are multiplied by: `w`, or `1 + w` for Gemma.
pub(super) fn effective_weight(w: &[f32], add_one: bool) -> Vec<f32> {
    w.iter()
        .map(|&v| if add_one { v + 1.0 } else { v })
        .collect()
}

struct RmsNorm {
    eps: f64,
    add_one: bool,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let [x, w] = f32_inputs(self.name(), [(s1, l1, "input"), (s2, l2, "weight")])?;
        rows_of(l1, w.len(), "rms-norm")?;
        let out = normalize(x, &effective_weight(w, self.add_one), self.eps as f32);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let op = RmsNormGrad {
            eps: self.eps,
            add_one: self.add_one,
        };
        let grads = x.apply_op3_no_bwd(w, &grad.contiguous()?, &op)?;
        let [dx, dw] = unpack(op.name(), &grads, [x.shape(), w.shape()])?;
        Ok((Some(dx), Some(dw)))
    }
}

/// Backward of [`RmsNorm`]: returns `∂L/∂x` (flattened) followed by `∂L/∂w`, packed in one buffer.
struct RmsNormGrad {
    eps: f64,
    add_one: bool,
}

impl CustomOp3 for RmsNormGrad {
    fn name(&self) -> &'static str {
        "fused-rms-norm-grad"
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
        let [x, w, g] = f32_inputs(
            self.name(),
            [(s1, l1, "input"), (s2, l2, "weight"), (s3, l3, "gradient")],
        )?;
        let dim = w.len();
        rows_of(l1, dim, "rms-norm")?;
        if g.len() != x.len() {
            candle_core::bail!(
                "rms-norm gradient has {} elements, input {}",
                g.len(),
                x.len()
            );
        }
        let w = effective_weight(w, self.add_one);
        let mut out = vec![0f32; x.len() + dim];
        let (dx, dw) = out.split_at_mut(x.len());
        dw.copy_from_slice(&normalize_backward(x, &w, g, self.eps as f32, dx));
        Ok(packed(out))
    }
}

/// `x · r · w` row by row (`w` the effective weight, its length the row length).
pub(super) fn normalize(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let dim = w.len();
    let mut out = super::buffer::uninit(x.len());
    let chunk = rows_per_task(x.len() / dim.max(1), dim) * dim;
    out.par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .for_each(|(o, x)| {
            for (o, x) in o.chunks_exact_mut(dim).zip(x.chunks_exact(dim)) {
                let r = inv_rms(x, eps);
                for ((o, &x), &w) in o.iter_mut().zip(x).zip(w) {
                    o.write(x * r * w);
                }
            }
        });
    // SAFETY: the chunks cover `out` (whole rows) and every slot of a row is written.
    unsafe { super::buffer::assume_init(out) }
}

/// The backward of [`normalize`] for the output gradient `g`: adds `∂L/∂x` to `dx` (so `dx` may
/// arrive holding a residual stream's gradient) and returns `∂L/∂w` (of the effective weight).
pub(super) fn normalize_backward(
    x: &[f32],
    w: &[f32],
    g: &[f32],
    eps: f32,
    dx: &mut [f32],
) -> Vec<f32> {
    let dim = w.len();
    let chunk = rows_per_task(x.len() / dim.max(1), dim) * dim;
    let partials: Vec<Vec<f32>> = dx
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk).zip(g.par_chunks(chunk)))
        .map(|(dx, (x, g))| {
            let mut dw = vec![0f32; dim];
            let mut a = vec![0f32; dim];
            for ((dx, x), g) in dx
                .chunks_exact_mut(dim)
                .zip(x.chunks_exact(dim))
                .zip(g.chunks_exact(dim))
            {
                let r = inv_rms(x, eps);
                for ((a, &g), &w) in a.iter_mut().zip(g).zip(w) {
                    *a = g * w;
                }
                let c = r * r * r * dot(&a, x) / dim as f32;
                for (((dx, &a), &x), (dw, &g)) in
                    dx.iter_mut().zip(&a).zip(x).zip(dw.iter_mut().zip(g))
                {
                    *dx += r * a - x * c;
                    *dw += g * x * r;
                }
            }
            dw
        })
        .collect();
    let mut dw = vec![0f32; dim];
    for p in partials {
        for (d, v) in dw.iter_mut().zip(p) {
            *d += v;
        }
    }
    dw
}
