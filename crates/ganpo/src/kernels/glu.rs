//! The gated MLP activation `act(gate) ⊙ up` (SwiGLU for SiLU, GeGLU for the GELUs), fused into
//! one pass forward and one pass backward:
//! `∂L/∂gate = g ⊙ up ⊙ act'(gate)`, `∂L/∂up = g ⊙ act(gate)`.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::Activation;
use super::op_io::{equal_f32_inputs, packed, unpack};
use super::{buffer, fused, rows_per_task, simd, verf, vexp};
use crate::Result;

/// `act(gate) ⊙ up` for same-shaped `gate` and `up`.
pub fn gated_activation(gate: &Tensor, up: &Tensor, act: Activation) -> Result<Tensor> {
    if fused(&[gate, up]) && gate.dims() == up.dims() {
        Ok(gate
            .contiguous()?
            .apply_op2(&up.contiguous()?, Glu { act })?)
    } else {
        gated_activation_composed(gate, up, act)
    }
}

/// The same function from differentiable candle primitives.
pub fn gated_activation_composed(gate: &Tensor, up: &Tensor, act: Activation) -> Result<Tensor> {
    let gate = match act {
        Activation::Silu => candle_nn::ops::silu(gate)?,
        // candle's `gelu` is the tanh approximation (PyTorch `approximate="tanh"`).
        Activation::GeluTanh => gate.gelu()?,
        Activation::Gelu => gate.gelu_erf()?,
    };
    Ok((gate * up)?)
}

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// `(act(x), act'(x))`.
#[inline(always)]
pub(super) fn act_and_slope(act: Activation, x: f32) -> (f32, f32) {
    match act {
        Activation::Silu => {
            let s = 1.0 / (1.0 + vexp::exp(-x));
            (x * s, s * (1.0 + x * (1.0 - s)))
        }
        Activation::GeluTanh => {
            let u = SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x);
            let th = u.tanh();
            let du = SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044_715 * x * x);
            (
                0.5 * x * (1.0 + th),
                0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du,
            )
        }
        Activation::Gelu => {
            let cdf = 0.5 * (1.0 + verf::erf(x * std::f32::consts::FRAC_1_SQRT_2));
            (x * cdf, cdf + x * INV_SQRT_2PI * vexp::exp(-0.5 * x * x))
        }
    }
}

/// Runs the element-wise loop `body` with `act` a constant in each instance, compiled for the
/// widest vector instruction set ([`simd::vectorized`]): a loop over `act_and_slope` with the
/// activation known vectorizes whole (the exponential and the division included), 16 lanes under
/// AVX-512 where the portable target has 4. SiLU's loops took ~10 % of a DPO step's samples on a
/// Zen 5 machine before (`docs/performance.md`).
#[inline(always)]
fn specialized(act: Activation, body: impl FnOnce(Activation)) {
    simd::vectorized(
        #[inline(always)]
        || match act {
            Activation::Silu => body(Activation::Silu),
            Activation::GeluTanh => body(Activation::GeluTanh),
            Activation::Gelu => body(Activation::Gelu),
        },
    )
}

struct Glu {
    act: Activation,
}

impl CustomOp2 for Glu {
    fn name(&self) -> &'static str {
        "fused-glu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let [gate, up] = equal_f32_inputs(self.name(), [(s1, l1, "gate"), (s2, l2, "up")])?;
        Ok((
            CpuStorage::F32(glu_values(gate, up, self.act)),
            l1.shape().clone(),
        ))
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let op = GluGrad { act: self.act };
        let grads = gate.apply_op3_no_bwd(up, &grad.contiguous()?, &op)?;
        let [dgate, dup] = unpack(op.name(), &grads, [gate.shape(), up.shape()])?;
        Ok((Some(dgate), Some(dup)))
    }
}

/// Backward of [`Glu`]: `∂L/∂gate` followed by `∂L/∂up`, packed in one buffer.
struct GluGrad {
    act: Activation,
}

impl CustomOp3 for GluGrad {
    fn name(&self) -> &'static str {
        "fused-glu-grad"
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
        let [gate, up, grad] = equal_f32_inputs(
            self.name(),
            [(s1, l1, "gate"), (s2, l2, "up"), (s3, l3, "gradient")],
        )?;
        let n = gate.len();
        let mut out = buffer::uninit(2 * n);
        glu_grads_into(gate, up, grad, self.act, &mut out);
        // SAFETY: `glu_grads_into` writes all `2 n` slots.
        let out = unsafe { buffer::assume_init(out) };
        Ok(packed(out))
    }
}

/// `act(gate) ⊙ up` of equally long buffers.
pub(super) fn glu_values(gate: &[f32], up: &[f32], act: Activation) -> Vec<f32> {
    let chunk = rows_per_task(gate.len(), 1).min(1 << 14);
    let mut out = buffer::uninit(gate.len());
    out.par_chunks_mut(chunk)
        .zip(gate.par_chunks(chunk).zip(up.par_chunks(chunk)))
        .for_each(|(o, (g, u))| {
            specialized(
                act,
                #[inline(always)]
                |act| {
                    for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                        o.write(act_and_slope(act, g).0 * u);
                    }
                },
            )
        });
    // SAFETY: the chunks cover `out` and each slot of a chunk is written.
    unsafe { buffer::assume_init(out) }
}

/// Writes `∂L/∂gate` then `∂L/∂up` (`2 n` slots of `out`) from the activation's output gradient
/// `grad` (`n` each).
pub(super) fn glu_grads_into(
    gate: &[f32],
    up: &[f32],
    grad: &[f32],
    act: Activation,
    out: &mut [MaybeUninit<f32>],
) {
    let n = gate.len();
    let chunk = (1usize << 14).min(n.max(1));
    let (dgate, dup) = out[..2 * n].split_at_mut(n);
    dgate
        .par_chunks_mut(chunk)
        .zip(dup.par_chunks_mut(chunk))
        .zip(
            gate.par_chunks(chunk)
                .zip(up.par_chunks(chunk))
                .zip(grad.par_chunks(chunk)),
        )
        .for_each(|((dg, du), ((g, u), gr))| {
            specialized(
                act,
                #[inline(always)]
                |act| {
                    for i in 0..g.len() {
                        let (a, slope) = act_and_slope(act, g[i]);
                        dg[i].write(gr[i] * u[i] * slope);
                        du[i].write(gr[i] * a);
                    }
                },
            )
        });
}
