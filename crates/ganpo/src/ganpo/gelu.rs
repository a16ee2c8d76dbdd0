//! Exact (erf) GELU with an exact gradient, as torch's default `nn.GELU()` / `F.gelu`.
//!
//! candle's fused `gelu_erf` computes the forward exactly, but its backward uses the truncated
//! constant 0.398942 for 1/√(2π) (candle-core 0.11 `backprop.rs`), a relative gradient error of
//! ~7e-7 that shows up against a float64 reference. [`crate::kernels::gelu_erf`] uses the exact
//! slope `Φ(x) + x·φ(x)` (f32 CPU tensors), or composes `x/2 · (1 + erf(x/√2))` so that autograd
//! uses `erf`'s exact derivative (other dtypes and devices).

use candle_core::Tensor;

use crate::Result;

/// `gelu(x) = x/2 · (1 + erf(x/√2))`, element-wise.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    crate::kernels::gelu_erf(x)
}
