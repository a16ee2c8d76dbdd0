//! `y = x Wᵀ + b` as one 2-D matrix product over all leading dimensions, with its own backward.
//!
//! `candle_nn::Linear` multiplies a `[B, T, in]` input by the weight broadcast to `[B, in, out]`:
//! B separate products forward, and a backward that computes B weight gradients of `[in, out]`
//! and then sums them in a single-threaded reduction. Flattening to `[B·T, in]` with candle's
//! `reshape` and `matmul(W.t())` fixes that but leaves four graph nodes (two reshapes, the
//! transpose and the product), and candle's backward adds each node's gradient into a fresh zero
//! tensor: ~24 M floats written and re-read per decoder layer for nothing. Here the product is one
//! op whose backward writes `∂L/∂x = g W` and `∂L/∂W = gᵀ x` directly (and skips the weight
//! gradient for a weight that is not trained). A bias is part of the same op (its gradient is the
//! column sums of `g`), not a broadcast add whose backward is another zero-fill plus a
//! single-threaded strided reduction.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{MatRef, matmul, matmul_new};
use super::op_io::f32_inputs;
use super::{buffer, fused, rows_per_task};
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
    let mut shape = dims.to_vec();
    shape[dims.len() - 1] = out_dim;
    let forward = Product {
        a_t: false,
        b_t: true,
        shape: shape.into(),
    };
    match bias {
        Some(b) if fused(&[x, weight, b]) && b.dims() == [out_dim] => {
            Ok(x.contiguous()?.apply_op3(
                &weight.contiguous()?,
                &b.contiguous()?,
                SumProduct(forward, Addend::Bias),
            )?)
        }
        None if fused(&[x, weight]) => {
            Ok(x.contiguous()?.apply_op2(&weight.contiguous()?, forward)?)
        }
        _ => linear_composed(x, weight, bias),
    }
}

/// `residual + x Wᵀ` for `x` `[..., in]`, `weight` `[out, in]` and `residual` `[..., out]`, as one
/// op: no graph node for the product alone (candle would keep it until the backward pass returns,
/// and give it a zero-filled gradient); differentiable in all three.
pub fn linear_residual(x: &Tensor, weight: &Tensor, residual: &Tensor) -> Result<Tensor> {
    let (out_dim, in_dim) = weight.dims2()?;
    let dims = x.dims();
    let mut shape = dims.to_vec();
    if let Some(last) = shape.last_mut() {
        *last = out_dim;
    }
    if dims.last() != Some(&in_dim) || residual.dims() != shape.as_slice() {
        return Err(Error::Training(format!(
            "linear with residual: input {dims:?}, weight [{out_dim}, {in_dim}], residual {:?}",
            residual.dims()
        )));
    }
    if !fused(&[x, weight, residual]) {
        return Ok((residual + linear_composed(x, weight, None)?)?);
    }
    let product = Product {
        a_t: false,
        b_t: true,
        shape: shape.into(),
    };
    Ok(x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &residual.contiguous()?,
        SumProduct(product, Addend::Residual),
    )?)
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
    let [data] = f32_inputs("linear", [(s, l, "operand")])?;
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
        self.run(s1, l1, s2, l2, Start::Zero)
    }

    /// Only the forward product `x Wᵀ` is differentiated (the gradient products are no-grad ops).
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        input_and_weight_grads(x, w, &grad.contiguous()?)
    }
}

impl Product {
    /// The product, added to `start`.
    fn run(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        start: Start<'_>,
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
        let out = match start {
            Start::Zero => matmul_new(a, b)?,
            Start::Bias(bias) => biased_product(a, b, bias)?,
            Start::Residual(r) if r.len() == a.rows * b.cols => {
                let mut out = buffer::copy_par(r);
                matmul(&mut out, a, b, true)?;
                out
            }
            Start::Residual(r) => {
                candle_core::bail!("linear: a residual of {} for {:?}", r.len(), self.shape)
            }
        };
        Ok((CpuStorage::F32(out), self.shape.clone()))
    }
}

/// What a product's output starts from before the product is added.
#[derive(Clone, Copy)]
enum Start<'a> {
    /// Zero: the product alone.
    Zero,
    /// A bias `[cols]` broadcast over the rows.
    Bias(&'a [f32]),
    /// A full `[rows, cols]` residual.
    Residual(&'a [f32]),
}

/// `rows` copies of `bias`, written in parallel (the product then adds into them).
fn rows_of_bias(bias: &[f32], rows: usize) -> Vec<f32> {
    let cols = bias.len();
    let mut out = buffer::uninit(rows * cols);
    if cols > 0 {
        let per_task = rows_per_task(rows, cols);
        out.par_chunks_mut(per_task * cols).for_each(|block| {
            for row in block.chunks_exact_mut(cols) {
                for (o, &b) in row.iter_mut().zip(bias) {
                    o.write(b);
                }
            }
        });
    }
    // SAFETY: the blocks cover `out`, and each block's rows (whole rows: a block is a multiple of
    // `cols` long) were all written.
    unsafe { buffer::assume_init(out) }
}

/// `∂L/∂x = g W` (`[rows, out] · [out, in]`) and `∂L/∂W = gᵀ x` (`[out, rows] · [rows, in]`), each
/// only for an operand that needs it.
pub(super) fn input_and_weight_grads(
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
    let product = |a_t, b_t, shape: &Shape| Product {
        a_t,
        b_t,
        shape: shape.clone(),
    };
    let dx = x
        .track_op()
        .then(|| g.apply_op2_no_bwd(w, &product(false, false, x.shape())))
        .transpose()?;
    let dw = w
        .track_op()
        .then(|| g.apply_op2_no_bwd(x, &product(true, false, w.shape())))
        .transpose()?;
    Ok((dx, dw))
}

/// What a [`SumProduct`] adds its product to.
#[derive(Clone, Copy)]
enum Addend {
    /// A bias `[out]` broadcast over the rows: its gradient is the column sums of `g`.
    Bias,
    /// A residual of the output's shape: its gradient is `g` itself.
    Residual,
}

/// `x Wᵀ + b` or `residual + x Wᵀ` as one op.
struct SumProduct(Product, Addend);

impl CustomOp3 for SumProduct {
    fn name(&self) -> &'static str {
        match self.1 {
            Addend::Bias => "linear-biased-product",
            Addend::Residual => "linear-residual-product",
        }
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
        let [addend] = f32_inputs(self.name(), [(s3, l3, "bias or residual")])?;
        let start = match self.1 {
            Addend::Bias => Start::Bias(addend),
            Addend::Residual => Start::Residual(addend),
        };
        self.0.run(s1, l1, s2, l2, start)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        addend: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let (dx, dw) = input_and_weight_grads(x, w, &g)?;
        let da = match self.1 {
            Addend::Bias => bias_grad(addend, &g)?,
            Addend::Residual => Some(g),
        };
        Ok((dx, dw, da))
    }
}

/// The column sums of a row-major matrix (all leading dimensions are rows).
struct ColumnSums;

impl CustomOp1 for ColumnSums {
    fn name(&self) -> &'static str {
        "linear-bias-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = matrix(s, l, false)?;
        Ok((
            CpuStorage::F32(column_sums(g.data, g.cols)),
            Shape::from(g.cols),
        ))
    }
}

/// The column sums of the row-major matrix `data` with `cols` columns: column blocks in
/// parallel, each summing its columns over all rows in order.
pub(crate) fn column_sums(data: &[f32], cols: usize) -> Vec<f32> {
    let mut sums = vec![0f32; cols];
    const COLUMNS: usize = 128;
    sums.par_chunks_mut(COLUMNS)
        .enumerate()
        .for_each(|(block, sums)| {
            let first = block * COLUMNS;
            for row in data.chunks_exact(cols.max(1)) {
                for (s, &x) in sums.iter_mut().zip(&row[first..]) {
                    *s += x;
                }
            }
        });
    sums
}

/// `∂L/∂b`, the column sums of the output gradient `g` (all leading dimensions are rows), when the
/// bias is tracked.
pub(super) fn bias_grad(bias: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
    bias.track_op()
        .then(|| g.apply_op1_no_bwd(&ColumnSums))
        .transpose()
}

/// `a · b + bias` (bias `[b.cols]` broadcast over the rows), computed as [`linear`]'s biased
/// product is: the bias rows first, the product added into them.
pub(super) fn biased_product(
    a: MatRef<'_>,
    b: MatRef<'_>,
    bias: &[f32],
) -> candle_core::Result<Vec<f32>> {
    if bias.len() != b.cols {
        candle_core::bail!("linear: a bias of {} for {} outputs", bias.len(), b.cols);
    }
    let mut out = rows_of_bias(bias, a.rows);
    matmul(&mut out, a, b, true)?;
    Ok(out)
}
