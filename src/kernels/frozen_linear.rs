//! `y = x Wᵀ + b` with a constant (frozen) `W` and `b`: the backward computes `∂L/∂x = ∂L/∂y · W`
//! only.
//!
//! candle's matmul backward always computes the gradient of both operands, so a linear layer with
//! detached weights still pays for a weight-gradient product that nothing reads (as much work as
//! the input gradient). GANPO's generator term runs the discriminators this way on every step.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::fused;
use super::gemm::{MatRef, matmul};
use super::storage::{contiguous_f32, with_f32};
use crate::Result;

/// `x Wᵀ + b` for `x` `[..., in]`, `weight` `[out, in]` and `bias` `[out]`, differentiable in `x`
/// only (`weight` and `bias` are detached).
pub fn frozen_linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let weight = weight.detach();
    let bias = bias.map(Tensor::detach);
    let mut all = vec![x, &weight];
    all.extend(bias.as_ref());
    if fused(&all) {
        let op = FrozenLinear {
            weight: weight.contiguous()?,
            bias: bias.map(|b| b.contiguous()).transpose()?,
        };
        Ok(x.contiguous()?.apply_op1(op)?)
    } else {
        frozen_linear_composed(x, &weight, bias.as_ref())
    }
}

/// The same function from candle's linear layer (whose backward also computes weight gradients).
pub fn frozen_linear_composed(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    super::linear_composed(x, &weight.detach(), bias.map(Tensor::detach).as_ref())
}

struct FrozenLinear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, "linear input")?;
        let (out_dim, in_dim) = self.weight.dims2()?;
        let dims = l.shape().dims();
        if in_dim == 0 || out_dim == 0 || dims.last() != Some(&in_dim) {
            candle_core::bail!("linear: input {dims:?} vs weight [{out_dim}, {in_dim}]");
        }
        let rows = x.len() / in_dim;
        let mut out = match &self.bias {
            Some(b) => with_f32(b, "linear bias", |b| {
                if b.len() != out_dim {
                    candle_core::bail!("linear: bias of {} for {out_dim} outputs", b.len());
                }
                Ok(b.repeat(rows))
            })?,
            None => vec![0f32; rows * out_dim],
        };
        with_f32(&self.weight, "linear weight", |w| {
            let w = MatRef::row_major(w, out_dim, in_dim).t();
            matmul(
                &mut out,
                MatRef::row_major(x, rows, in_dim),
                w,
                self.bias.is_some(),
            )
        })?;
        let mut shape = dims.to_vec();
        if let Some(last) = shape.last_mut() {
            *last = out_dim;
        }
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let out_dim = self.weight.dim(0)?;
        let rows = grad.elem_count() / out_dim;
        let dx = grad
            .contiguous()?
            .reshape((rows, out_dim))?
            .matmul(&self.weight)?
            .reshape(x.shape())?;
        Ok(Some(dx))
    }
}
