//! `y = x Wᵀ + b` with a constant (frozen) `W` and `b`: the backward computes `∂L/∂x = ∂L/∂y · W`
//! only.
//!
//! candle's matmul backward always computes the gradient of both operands, so a linear layer with
//! detached weights still pays for a weight-gradient product that nothing reads (as much work as
//! the input gradient). GANPO's generator term runs the discriminators this way on every step.
//! [`super::linear`] skips the gradient of any operand that is not tracked, so detaching the
//! parameters is all this needs.

use candle_core::Tensor;

use crate::Result;

/// `x Wᵀ + b` for `x` `[..., in]`, `weight` `[out, in]` and `bias` `[out]`, differentiable in `x`
/// only (`weight` and `bias` are detached).
pub fn frozen_linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    super::linear(x, &weight.detach(), bias.map(Tensor::detach).as_ref())
}

/// The same function from candle's linear layer (whose backward also computes weight gradients).
pub fn frozen_linear_composed(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    super::linear_composed(x, &weight.detach(), bias.map(Tensor::detach).as_ref())
}
