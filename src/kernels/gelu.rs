//! Exact (erf) GELU `x · Φ(x)` as one pass forward and one pass backward, with the exact slope
//! `Φ(x) + x · φ(x)` (candle's `gelu_erf` backward truncates 1/√(2π); see `ganpo::gelu`).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::fused;
use super::glu::act_and_slope;
use super::storage::contiguous_f32;
use crate::Result;
use crate::model::Activation;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// Exact GELU, element-wise.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if fused(&[x]) {
        Ok(x.contiguous()?.apply_op1(Gelu)?)
    } else {
        gelu_erf_composed(x)
    }
}

/// `x/2 · (1 + erf(x/√2))` from differentiable candle primitives (autograd uses `erf`'s exact
/// derivative).
pub fn gelu_erf_composed(x: &Tensor) -> Result<Tensor> {
    let erf = (x * std::f64::consts::FRAC_1_SQRT_2)?.erf()?;
    Ok(((erf + 1.0)? * x)?.affine(0.5, 0.0)?)
}

/// `(gelu(x), gelu'(x))`: the gated activation's exact-GELU branch, so both kernels compute the
/// same function.
#[inline(always)]
fn gelu_and_slope(x: f32) -> (f32, f32) {
    act_and_slope(Activation::Gelu, x)
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, "gelu input")?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(o, x)| {
                for (o, &x) in o.iter_mut().zip(x) {
                    *o = gelu_and_slope(x).0;
                }
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &GeluGrad)?))
    }
}

/// Backward of [`Gelu`]: `∂L/∂y ⊙ (Φ(x) + x φ(x))`.
struct GeluGrad;

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "fused-gelu-erf-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "gelu input")?;
        let g = contiguous_f32(s2, l2, "gelu gradient")?;
        if g.len() != x.len() {
            candle_core::bail!("gelu gradient: shapes {:?} vs {:?}", l1.shape(), l2.shape());
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|(o, (x, g))| {
                for ((o, &x), &g) in o.iter_mut().zip(x).zip(g) {
                    *o = g * gelu_and_slope(x).1;
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
