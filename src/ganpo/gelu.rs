//! Exact (erf) GELU with an exact gradient, as torch's default `nn.GELU()` / `F.gelu`.
//!
//! candle's fused `gelu_erf` computes the forward exactly, but its backward uses the truncated
//! constant 0.398942 for 1/√(2π) (candle-core 0.11 `backprop.rs`), a relative gradient error of
//! ~7e-7 that shows up against a float64 reference. Composing `x/2 · (1 + erf(x/√2))` lets autograd
//! use `erf`'s exact derivative `2/√π · e^{−x²}`.

use candle_core::Tensor;

use crate::Result;

/// `gelu(x) = x/2 · (1 + erf(x/√2))`, element-wise.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    let erf = (x * std::f64::consts::FRAC_1_SQRT_2)?.erf()?;
    Ok(((erf + 1.0)? * x)?.affine(0.5, 0.0)?)
}
