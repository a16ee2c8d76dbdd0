//! Exact (erf) GELU `x · Φ(x)` as one pass forward and one pass backward, with the exact slope
//! `Φ(x) + x · φ(x)` (candle's `gelu_erf` backward truncates 1/√(2π); see `ganpo::gelu`);
//! optionally followed by inverted dropout in the same pass.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::Activation;
use super::glu::act_and_slope;
use super::masked_scale::masked_scale_composed;
use super::op_io::{equal_f32_inputs, f32_inputs};
use super::storage::with_f32;
use super::{buffer, fused, simd};
use crate::Result;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// Exact GELU, element-wise.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if fused(&[x]) {
        Ok(x.contiguous()?.apply_op1(Gelu { dropout: None })?)
    } else {
        gelu_erf_composed(x)
    }
}

/// `gelu(x) ⊙ mask · scale`: exact GELU followed by inverted dropout (`mask` ∈ {0, 1}, a constant,
/// `scale = 1/(1 − p)`), bit for bit what [`gelu_erf`] then [`super::masked_scale`] give, in one
/// pass each way and without the intermediate activation's gradient.
pub fn gelu_erf_masked(x: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    if fused(&[x, mask]) && x.dims() == mask.dims() {
        let dropout = Some((mask.detach().contiguous()?, scale as f32));
        Ok(x.contiguous()?.apply_op1(Gelu { dropout })?)
    } else {
        masked_scale_composed(&gelu_erf_composed(x)?, mask, scale)
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
pub(crate) fn gelu_and_slope(x: f32) -> (f32, f32) {
    act_and_slope(Activation::Gelu, x)
}

/// The dropout applied after the activation: its mask (same shape) and scale.
type Dropout = Option<(Tensor, f32)>;

/// Runs `f` on the dropout mask's data (`None` without dropout).
fn with_mask<R>(
    dropout: &Dropout,
    f: impl FnOnce(Option<(&[f32], f32)>) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    match dropout {
        Some((mask, scale)) => with_f32(mask, "gelu dropout mask", |m| f(Some((m, *scale)))),
        None => f(None),
    }
}

/// `gelu(x)`, or `gelu(x) ⊙ m · scale` with dropout's mask and scale, over rayon.
pub(crate) fn forward_slice(x: &[f32], dropout: Option<(&[f32], f32)>) -> Vec<f32> {
    let mut out = buffer::uninit(x.len());
    let chunks = out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK));
    match dropout {
        None => chunks.for_each(|(o, x)| {
            simd::vectorized(
                #[inline(always)]
                || {
                    for (o, &x) in o.iter_mut().zip(x) {
                        o.write(gelu_and_slope(x).0);
                    }
                },
            )
        }),
        Some((m, s)) => chunks.zip(m.par_chunks(CHUNK)).for_each(|((o, x), m)| {
            simd::vectorized(
                #[inline(always)]
                || {
                    for ((o, &x), &m) in o.iter_mut().zip(x).zip(m) {
                        o.write(gelu_and_slope(x).0 * m * s);
                    }
                },
            )
        }),
    }
    // SAFETY: the chunks cover `out` and every loop writes each slot of its chunk.
    unsafe { buffer::assume_init(out) }
}

struct Gelu {
    dropout: Dropout,
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let [x] = f32_inputs(self.name(), [(s, l, "input")])?;
        let out = with_mask(&self.dropout, |dropout| Ok(forward_slice(x, dropout)))?;
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let op = GeluGrad {
            dropout: self.dropout.clone(),
        };
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &op)?))
    }
}

/// Backward of [`Gelu`]: `∂L/∂y ⊙ (Φ(x) + x φ(x))`, with the incoming gradient first masked and
/// scaled as the forward's output was (the order of the unfused ops' backward).
struct GeluGrad {
    dropout: Dropout,
}

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
        let [x, g] = equal_f32_inputs(self.name(), [(s1, l1, "input"), (s2, l2, "gradient")])?;
        let mut out = buffer::uninit(x.len());
        with_mask(&self.dropout, |dropout| {
            let chunks = out
                .par_chunks_mut(CHUNK)
                .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)));
            match dropout {
                None => chunks.for_each(|(o, (x, g))| {
                    simd::vectorized(
                        #[inline(always)]
                        || {
                            for ((o, &x), &g) in o.iter_mut().zip(x).zip(g) {
                                o.write(g * gelu_and_slope(x).1);
                            }
                        },
                    )
                }),
                Some((m, s)) => chunks
                    .zip(m.par_chunks(CHUNK))
                    .for_each(|((o, (x, g)), m)| {
                        simd::vectorized(
                            #[inline(always)]
                            || {
                                for (((o, &x), &g), &m) in o.iter_mut().zip(x).zip(g).zip(m) {
                                    o.write(g * m * s * gelu_and_slope(x).1);
                                }
                            },
                        )
                    }),
            }
            Ok(())
        })?;
        // SAFETY: the chunks cover `out` and every loop writes each slot of its chunk.
        let out = unsafe { buffer::assume_init(out) };
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The kernels run in the widest instruction set the CPU has; they must give the scalar
    /// function's results bit for bit (no fused multiply-adds, no other approximation).
    #[test]
    fn vectorized_kernels_equal_the_scalar_function_bit_for_bit() {
        let n = 3 * CHUNK + 17;
        let mut xs: Vec<f32> = (0..n).map(|i| (i as f32 * 0.618_034).sin() * 9.0).collect();
        xs[..6].copy_from_slice(&[0.0, -0.0, 1e-30, -5.0, 40.0, -40.0]);
        let x = Var::from_vec(xs.clone(), n, &Device::Cpu).unwrap();
        let y = gelu_erf(x.as_tensor()).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        let ys: Vec<f32> = y.to_vec1().unwrap();
        let gs: Vec<f32> = grads.get(x.as_tensor()).unwrap().to_vec1().unwrap();
        for ((&x, y), g) in xs.iter().zip(ys).zip(gs) {
            let (want_y, want_g) = gelu_and_slope(x);
            assert_eq!(y.to_bits(), want_y.to_bits(), "gelu({x})");
            assert_eq!(g.to_bits(), (1.0 * want_g).to_bits(), "gelu'({x})");
        }
    }
}
