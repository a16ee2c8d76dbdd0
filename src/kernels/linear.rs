//! `y = x Wᵀ + b` as one 2-D matrix product over all leading dimensions.
//!
//! `candle_nn::Linear` multiplies a `[B, T, in]` input by the weight broadcast to `[B, in, out]`:
//! B separate products forward, and a backward that computes B weight gradients of `[in, out]`
//! and then sums them in a single-threaded reduction. Flattening to `[B·T, in]` first gives one
//! product each way and the weight gradient directly.

use candle_core::Tensor;

use crate::Result;

/// `x Wᵀ + b` for `x` `[..., in]`, `weight` `[out, in]` and `bias` `[out]`; differentiable in all
/// three.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let dims = x.dims();
    let (&in_dim, lead) = dims
        .split_last()
        .ok_or_else(|| crate::Error::Training("linear: a scalar input".into()))?;
    let rows: usize = lead.iter().product();
    let y = x.reshape((rows, in_dim))?.matmul(&weight.t()?)?;
    let y = match bias {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    let mut out = lead.to_vec();
    out.push(weight.dim(0)?);
    Ok(y.reshape(out)?)
}
