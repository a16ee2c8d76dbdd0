//! Rotary position embeddings in Hugging Face's "rotate half" layout: with `x = [x₁, x₂]` split at
//! `d/2`, `y = [x₁ cos − x₂ sin, x₂ cos + x₁ sin]`. The rotation is orthogonal, so the backward pass
//! is the inverse rotation (`sin → −sin`) applied to the incoming gradient.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::op_io::f32_inputs;
use super::{buffer, fused, rows_per_task};
use crate::Result;

/// Rotates `x` (`[batch, heads, seq, head_dim]`) by the angles whose `cos`/`sin` are given either
/// per position (`[seq, head_dim/2]`) or per row and position (`[batch, seq, head_dim/2]`).
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if fused(&[x, cos, sin]) {
        Ok(x.contiguous()?.apply_op3(
            &cos.contiguous()?,
            &sin.contiguous()?,
            Rope { inverse: false },
        )?)
    } else {
        rope_composed(x, cos, sin)
    }
}

/// The same rotation from differentiable candle primitives.
pub fn rope_composed(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (b, _, t, d) = x.dims4()?;
    let (cos, sin) = if cos.rank() == 3 {
        (
            cos.reshape((b, 1, t, d / 2))?,
            sin.reshape((b, 1, t, d / 2))?,
        )
    } else {
        (cos.clone(), sin.clone())
    };
    let (cos, sin) = (cos.to_dtype(x.dtype())?, sin.to_dtype(x.dtype())?);
    let x1 = x.narrow(3, 0, d / 2)?;
    let x2 = x.narrow(3, d / 2, d / 2)?;
    Ok(Tensor::cat(
        &[
            (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?,
            (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?,
        ],
        3,
    )?)
}

/// Writes one head row `x` (`head_dim` values) rotated by `sign` times the angles whose cosines
/// and sines are `c` and `s` (`head_dim / 2` each) into `o`: `[x₁ c − x₂ s′, x₂ c + x₁ s′]` with
/// `s′ = sign · s`. `sign = −1` is the inverse rotation (the backward pass).
#[inline(always)]
pub(super) fn rotate_into(x: &[f32], c: &[f32], s: &[f32], sign: f32, o: &mut [MaybeUninit<f32>]) {
    let half = c.len();
    let (x1, x2) = x.split_at(half);
    let (o1, o2) = o.split_at_mut(half);
    for j in 0..half {
        let sj = sign * s[j];
        o1[j].write(x1[j] * c[j] - x2[j] * sj);
        o2[j].write(x2[j] * c[j] + x1[j] * sj);
    }
}

/// Rotates, in place, the heads in the first `rotated` floats of every row of `rows` (rows of
/// `row_len`, position `r mod t` for row `r`, heads of `head_dim`) by `sign` times the position's
/// angles, as [`rotate_into`] (`sign = −1`: the inverse rotation, for gradients). The rest of each
/// row (value heads) is left as it is.
pub(super) fn rotate_rows(
    rows: &mut [f32],
    row_len: usize,
    t: usize,
    rotated: usize,
    head_dim: usize,
    (cos, sin): (&[f32], &[f32]),
    sign: f32,
) {
    let half = head_dim / 2;
    rows.par_chunks_mut(row_len)
        .enumerate()
        .for_each(|(r, row)| {
            let pos = r % t;
            let (c, s) = (&cos[pos * half..][..half], &sin[pos * half..][..half]);
            for head in row[..rotated].chunks_exact_mut(head_dim) {
                let (x1, x2) = head.split_at_mut(half);
                for j in 0..half {
                    let sj = sign * s[j];
                    let (a, b) = (x1[j], x2[j]);
                    x1[j] = a * c[j] - b * sj;
                    x2[j] = b * c[j] + a * sj;
                }
            }
        });
}

/// The rotation (`inverse = false`) or its inverse (the backward pass).
struct Rope {
    inverse: bool,
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "fused-rope"
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
        let [x, cos, sin] = f32_inputs(
            self.name(),
            [(s1, l1, "input"), (s2, l2, "cos"), (s3, l3, "sin")],
        )?;
        let (b, h, t, d) = l1.shape().dims4()?;
        let half = d / 2;
        let per_batch = match l2.shape().dims() {
            [tt, hh] if *tt == t && *hh == half => false,
            [bb, tt, hh] if *bb == b && *tt == t && *hh == half => true,
            other => {
                candle_core::bail!("rope: cos {other:?} does not fit input {:?}", (b, h, t, d))
            }
        };
        if l3.shape() != l2.shape() || d % 2 != 0 {
            candle_core::bail!("rope: sin {:?} / head_dim {d} mismatch", l3.shape());
        }
        let sign = if self.inverse { -1.0f32 } else { 1.0 };
        let rows = b * h * t;
        let per_task = rows_per_task(rows, d);
        let mut out = buffer::uninit(x.len());
        out.par_chunks_mut(per_task * d)
            .zip(x.par_chunks(per_task * d))
            .enumerate()
            .for_each(|(task, (o, x))| {
                let first = task * per_task;
                for (i, (o, x)) in o.chunks_exact_mut(d).zip(x.chunks_exact(d)).enumerate() {
                    let row = first + i; // (batch, head, position) flattened
                    let pos = row % t;
                    let table = if per_batch {
                        (row / (h * t)) * t + pos
                    } else {
                        pos
                    };
                    let c = &cos[table * half..(table + 1) * half];
                    let s = &sin[table * half..(table + 1) * half];
                    rotate_into(x, c, s, sign, o);
                }
            });
        // SAFETY: the chunks cover `out` (whole rows each) and `rotate_into` writes every slot of
        // each row.
        let out = unsafe { buffer::assume_init(out) };
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let inverse = Rope {
            inverse: !self.inverse,
        };
        let dx = grad.contiguous()?.apply_op3_no_bwd(cos, sin, &inverse)?;
        Ok((Some(dx), None, None))
    }
}
