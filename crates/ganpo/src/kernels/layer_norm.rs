//! LayerNorm `y = x̂ ⊙ w + b` with `x̂ = (x − μ) · r`, `r = 1/√(σ² + ε)` and the biased variance
//! σ² over the last dimension (torch's `nn.LayerNorm`).
//!
//! Backward, with `a = ∂L/∂y ⊙ w` per row of D: `∂L/∂x = r · (a − mean(a) − x̂ · mean(a ⊙ x̂))`,
//! `∂L/∂w = Σ_rows ∂L/∂y ⊙ x̂`, `∂L/∂b = Σ_rows ∂L/∂y`.

use candle_core::{CpuStorage, CustomOp3, D, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::op_io::{f32_inputs, packed, unpack};
use super::storage::rows_of;
use super::vexp::LANES;
use super::{buffer, fused, rows_per_task, simd};
use crate::Result;

/// LayerNorm of `x` (`[..., dim]`) with `weight` and `bias` (`[dim]`).
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if fused(&[x, weight, bias]) && weight.dims() == bias.dims() {
        Ok(x.contiguous()?.apply_op3(
            &weight.contiguous()?,
            &bias.contiguous()?,
            LayerNorm { eps },
        )?)
    } else {
        layer_norm_composed(x, weight, bias, eps)
    }
}

/// The same function composed from differentiable candle primitives (candle's fused
/// `ops::layer_norm` drops gradients).
pub fn layer_norm_composed(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centered = x.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centered.broadcast_div(&(var + eps)?.sqrt()?)?;
    Ok(normed.broadcast_mul(weight)?.broadcast_add(bias)?)
}

/// `(μ, r)` of one row, two-pass in f32, each sum in [`LANES`] independent accumulators (one
/// sequential chain would bound the loop by the add latency and keep it scalar).
#[inline(always)]
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = laned_sum(row, |v| v) / n;
    let var = laned_sum(row, |v| (v - mean) * (v - mean)) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// `Σ f(x)` over `row`, accumulated in [`LANES`] lanes, then the lanes and the tail in order.
#[inline(always)]
fn laned_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (s, &x) in lanes.iter_mut().zip(chunk) {
            *s += f(x);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&x| f(x)).sum();
    lanes.iter().sum::<f32>() + tail
}

/// `Σ aᵢ bᵢ` in [`LANES`] lanes.
#[inline(always)]
fn laned_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let (mut ca, mut cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for ((s, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

/// LayerNorm of the rows of `x` (`dim = w.len()` each) with weight `w` and bias `b`, over rayon.
pub(crate) fn forward_rows(x: &[f32], w: &[f32], b: &[f32], eps: f32) -> Vec<f32> {
    let dim = w.len();
    let mut out = buffer::uninit(x.len());
    let chunk = rows_per_task(x.len() / dim.max(1), dim) * dim;
    out.par_chunks_mut(chunk.max(1))
        .zip(x.par_chunks(chunk.max(1)))
        .for_each(|(o, x)| {
            simd::vectorized(
                #[inline(always)]
                || {
                    for (o, x) in o.chunks_exact_mut(dim).zip(x.chunks_exact(dim)) {
                        let (mean, r) = moments(x, eps);
                        for (((o, &x), &w), &b) in o.iter_mut().zip(x).zip(w).zip(b) {
                            o.write((x - mean) * r * w + b);
                        }
                    }
                },
            )
        });
    // SAFETY: the chunks cover `out` (whole rows each) and every row is written in full.
    unsafe { buffer::assume_init(out) }
}

/// The backward of [`forward_rows`] for the output gradient `g`: writes `∂L/∂x` into `dx` (adds
/// it when `accumulate`, as a residual stream's gradient does) and returns `∂L/∂w` then `∂L/∂b`
/// (`2 · dim` floats).
pub(crate) fn backward_rows(
    x: &[f32],
    w: &[f32],
    g: &[f32],
    eps: f32,
    dx: &mut [f32],
    accumulate: bool,
) -> Vec<f32> {
    let dim = w.len();
    let chunk = (rows_per_task(x.len() / dim.max(1), dim) * dim).max(1);
    let partials: Vec<Vec<f32>> = dx
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk).zip(g.par_chunks(chunk)))
        .map(|(dx, (x, g))| {
            // ∂L/∂w then ∂L/∂b of this task's rows.
            let mut dwb = vec![0f32; 2 * dim];
            let (mut xhat, mut gw) = (vec![0f32; dim], vec![0f32; dim]);
            simd::vectorized(
                #[inline(always)]
                || {
                    for ((dx, x), g) in dx
                        .chunks_exact_mut(dim)
                        .zip(x.chunks_exact(dim))
                        .zip(g.chunks_exact(dim))
                    {
                        let (mean, r) = moments(x, eps);
                        for ((h, a), (&x, (&g, &w))) in xhat
                            .iter_mut()
                            .zip(&mut gw)
                            .zip(x.iter().zip(g.iter().zip(w)))
                        {
                            *h = (x - mean) * r;
                            *a = g * w;
                        }
                        let sum_a = laned_sum(&gw, |a| a);
                        let sum_ax = laned_dot(&gw, &xhat);
                        let (mean_a, mean_ax) = (sum_a / dim as f32, sum_ax / dim as f32);
                        let (dw, db) = dwb.split_at_mut(dim);
                        for i in 0..dim {
                            let d = r * (g[i] * w[i] - mean_a - xhat[i] * mean_ax);
                            dx[i] = if accumulate { dx[i] + d } else { d };
                            dw[i] += g[i] * xhat[i];
                            db[i] += g[i];
                        }
                    }
                },
            );
            dwb
        })
        .collect();
    let mut sums = vec![0f32; 2 * dim];
    for p in partials {
        for (d, v) in sums.iter_mut().zip(p) {
            *d += v;
        }
    }
    sums
}

struct LayerNorm {
    eps: f64,
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
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
        let [x, w, b] = f32_inputs(
            self.name(),
            [(s1, l1, "input"), (s2, l2, "weight"), (s3, l3, "bias")],
        )?;
        rows_of(l1, w.len(), "layer-norm")?;
        let out = forward_rows(x, w, b, self.eps as f32);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let op = LayerNormGrad { eps: self.eps };
        let grads = x.apply_op3_no_bwd(w, &grad.contiguous()?, &op)?;
        let [dx, dw, db] = unpack(op.name(), &grads, [x.shape(), w.shape(), b.shape()])?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// Backward of [`LayerNorm`]: `∂L/∂x` (flattened), `∂L/∂w` and `∂L/∂b`, packed in one buffer.
struct LayerNormGrad {
    eps: f64,
}

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "fused-layer-norm-grad"
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
        rows_of(l1, dim, "layer-norm")?;
        if g.len() != x.len() {
            candle_core::bail!(
                "layer-norm gradient has {} elements, input {}",
                g.len(),
                x.len()
            );
        }
        let mut out = vec![0f32; x.len() + 2 * dim];
        let (dx, dwb) = out.split_at_mut(x.len());
        dwb.copy_from_slice(&backward_rows(x, w, g, self.eps as f32, dx, false));
        Ok(packed(out))
    }
}
