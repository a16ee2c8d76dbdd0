//! `y = x Wᵀ + b` as one 2-D matrix product over all leading dimensions, with its own backward.
//!
//! `candle_nn::Linear` multiplies a `[B, T, in]` input by the weight broadcast to `[B, in, out]`:
//! B separate products forward, and a backward that computes B weight gradients of `[in, out]`
//! and then sums them in a single-threaded reduction. Flattening to `[B·T, in]` with candle's
//! `reshape` and `matmul(W.t())` fixes that but leaves four graph nodes (two reshapes, the
//! transpose and the product), and candle's backward adds each node's gradient into a fresh zero
//! tensor: ~24 M floats written and re-read per decoder layer for nothing. Here the product is one
//! op whose backward writes `∂L/∂x = g W` and `∂L/∂W = gᵀ x` directly (and skips the weight
//! gradient for a weight that is not trained).

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::fused;
use super::gemm::{MatRef, matmul};
use super::storage::contiguous_f32;
use crate::{Error, Result};

/// `x Wᵀ + b` for `x` `[..., in]`, `weight` `[out, in]` and `bias` `[out]`; differentiable in all
/// three.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (out_dim, in_dim) = weight.dims2()?;
    let dims = x.dims();
    if dims.last() != Some(&in_dim) || in_dim == 0 || out_dim == 0 {
        return Err(Error::Training(format!(
            "linear: input {dims:?} does not fit weight [{out_dim}, {in_dim}]"
        )));
    }
    let y = if fused(&[x, weight]) {
        let mut shape = dims.to_vec();
        shape[dims.len() - 1] = out_dim;
        x.contiguous()?.apply_op2(
            &weight.contiguous()?,
            Product {
                a_t: false,
                b_t: true,
                shape: shape.into(),
            },
        )?
    } else {
        return linear_composed(x, weight, bias);
    };
    Ok(match bias {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

/// The same function from candle primitives: one `[rows, in] · Wᵀ` product between reshapes.
pub fn linear_composed(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let dims = x.dims();
    let (&in_dim, lead) = dims
        .split_last()
        .ok_or_else(|| Error::Training("linear: a scalar input".into()))?;
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

/// `op(a) · op(b)` where each operand is read as a row-major 2-D matrix (all leading dimensions
/// flattened into rows) and `op` transposes it when asked; the result has `shape`.
struct Product {
    a_t: bool,
    b_t: bool,
    shape: Shape,
}

/// A contiguous tensor's data as a row-major matrix of rows × (its last dimension), transposed when
/// `t`.
fn matrix<'a>(s: &'a CpuStorage, l: &Layout, t: bool) -> candle_core::Result<MatRef<'a>> {
    let data = contiguous_f32(s, l, "linear operand")?;
    let cols = *l.shape().dims().last().unwrap_or(&1);
    let m = MatRef::row_major(data, data.len() / cols.max(1), cols);
    Ok(if t { m.t() } else { m })
}

impl CustomOp2 for Product {
    fn name(&self) -> &'static str {
        "linear-product"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (a, b) = (matrix(s1, l1, self.a_t)?, matrix(s2, l2, self.b_t)?);
        if a.rows * b.cols != self.shape.elem_count() {
            candle_core::bail!(
                "linear: [{}, {}] · [{}, {}] does not make {:?}",
                a.rows,
                a.cols,
                b.rows,
                b.cols,
                self.shape
            );
        }
        let mut out = vec![0f32; a.rows * b.cols];
        matmul(&mut out, a, b, false)?;
        Ok((CpuStorage::F32(out), self.shape.clone()))
    }

    /// Only the forward product `x Wᵀ` is differentiated (the gradient products are no-grad ops).
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let product = |a_t, b_t, shape: &Shape| Product {
            a_t,
            b_t,
            shape: shape.clone(),
        };
        // ∂L/∂x = g W: [rows, out] · [out, in].
        let dx = x
            .track_op()
            .then(|| g.apply_op2_no_bwd(w, &product(false, false, x.shape())))
            .transpose()?;
        // ∂L/∂W = gᵀ x: [out, rows] · [rows, in].
        let dw = w
            .track_op()
            .then(|| g.apply_op2_no_bwd(x, &product(true, false, w.shape())))
            .transpose()?;
        Ok((dx, dw))
    }
}
