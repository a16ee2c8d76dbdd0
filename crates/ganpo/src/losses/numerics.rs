//! Stable elementwise functions shared by the losses (log σ, softplus, σ, log(1 − eˣ), torch-style ReLU),
//! each with its value and its derivative computed separately so both are right everywhere.
//!
//! candle has no `log1p`/`expm1`, and composing them from `log`/`exp`/`abs` makes autodiff pick
//! subgradients at kinks: `min(x, 0) − log1p(exp(−|x|))` gets derivative 1 instead of ½ at x = 0, which
//! doubles the first DPO gradient (`reference/stack.md`, trap 4). So every function here computes its
//! value on detached data with Kahan's accurate `log1p`/`expm1` tricks and attaches the exact derivative
//! with `with_derivative`. Everything works in the input's dtype (f32 for training, f64 for gradient
//! checks) on any device.

use candle_core::{DType, Tensor};

use crate::Result;

/// A tensor equal to `value` whose gradient with respect to `x` is `derivative` (elementwise).
///
/// `value + (x·g − detach(x·g))`: the bracket is exactly zero in value (the same finite tensor minus
/// itself) and contributes `g` to the gradient of `x`; `value` and `g` are detached.
fn with_derivative(x: &Tensor, value: &Tensor, derivative: &Tensor) -> Result<Tensor> {
    let tangent = x.mul(&derivative.detach())?;
    Ok((value.detach() + (&tangent - tangent.detach())?)?)
}

/// `log(1 + u)` accurate to a few ulps for `u ≥ −½` (Kahan: `log(w)·u/(w − 1)` with `w = fl(1 + u)`,
/// where `w − 1` is exact by Sterbenz's lemma). Value only.
fn log1p_value(u: &Tensor) -> Result<Tensor> {
    let u = u.detach();
    let w = (&u + 1.0)?;
    let d = (&w - 1.0)?;
    // Where `w == 1` the ratio is 0/0; `where_cond` selects `u` there, the exact first-order value.
    let ratio = w.log()?.mul(&u)?.div(&d)?;
    Ok(d.eq(0.0)?.where_cond(&u, &ratio)?)
}

/// `eˣ − 1` accurate to a few ulps for `x ≤ 0` (Kahan: `(eˣ − 1)·x / log(eˣ)`). Value only.
fn expm1_nonpositive_value(x: &Tensor) -> Result<Tensor> {
    let x = x.detach();
    let e = x.exp()?;
    let d = (&e - 1.0)?;
    // `eˣ == 1` (|x| below half an ulp): eˣ − 1 = x to first order. `eˣ` underflowed to 0: the result is −1.
    let ratio = d.mul(&x)?.div(&e.log()?)?;
    let minus_one = d.ones_like()?.neg()?;
    let far = d.eq(-1.0)?.where_cond(&minus_one, &ratio)?;
    Ok(e.eq(1.0)?.where_cond(&x, &far)?)
}

/// σ(x) without overflow: `1/(1 + e^{−|x|})` or `e^{−|x|}/(1 + e^{−|x|})` by sign. Value only; exactly
/// ½ at x = 0.
fn sigmoid_value(x: &Tensor) -> Result<Tensor> {
    let x = x.detach();
    let e = x.abs()?.neg()?.exp()?;
    let denom = (&e + 1.0)?;
    let positive = denom.recip()?;
    let negative = e.div(&denom)?;
    Ok(x.ge(0.0)?.where_cond(&positive, &negative)?)
}

/// `log(1 + e^{−|x|})`, the common tail of softplus and log σ. Value only.
fn softplus_tail_value(x: &Tensor) -> Result<Tensor> {
    log1p_value(&x.detach().abs()?.neg()?.exp()?)
}

/// The logistic function σ(x) = 1/(1 + e^{−x}); derivative σ(x)·σ(−x).
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    let s = sigmoid_value(x)?;
    let s_neg = sigmoid_value(&x.neg()?)?;
    with_derivative(x, &s, &s.mul(&s_neg)?)
}

/// log σ(x) = min(x, 0) − log(1 + e^{−|x|}); derivative σ(−x) (exactly ½ at x = 0).
pub fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    let value = (x.detach().minimum(0.0)? - softplus_tail_value(x)?)?;
    with_derivative(x, &value, &sigmoid_value(&x.neg()?)?)
}

/// softplus(x) = log(1 + eˣ) = max(x, 0) + log(1 + e^{−|x|}); derivative σ(x).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let value = (x.detach().relu()? + softplus_tail_value(x)?)?;
    with_derivative(x, &value, &sigmoid_value(x)?)
}

/// log(1 − eˣ) for x < 0, the log-probability of *not* producing a sequence of log-probability x.
///
/// Mächler's log1mexp: `log(−expm1(x))` for x > −ln 2, `log1p(−eˣ)` otherwise; both accurate, so a
/// confident average log-prob such as −1e−6 gives log(1e−6) rather than f32 round-off. Derivative
/// `eˣ / expm1(x)`. The caller keeps x strictly negative (x = 0 is −∞).
pub fn log1mexp(x: &Tensor) -> Result<Tensor> {
    let xd = x.detach();
    let expm1 = expm1_nonpositive_value(&xd)?;
    let near = expm1.neg()?.log()?;
    let far = log1p_value(&xd.exp()?.neg()?)?;
    let value = xd.gt(-std::f64::consts::LN_2)?.where_cond(&near, &far)?;
    with_derivative(x, &value, &xd.exp()?.div(&expm1)?)
}

/// max(x, 0) with PyTorch's subgradient 0 at x = 0 (candle's `relu` uses 1), as TRL's hinge losses get.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    let active = x.detach().gt(0.0)?.to_dtype(x.dtype())?;
    with_derivative(x, &x.detach().relu()?, &active)
}

/// The dtype losses compute in: f64 stays f64 (gradient checks), everything else becomes f32.
pub(crate) fn compute_dtype(dtype: DType) -> DType {
    if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}
