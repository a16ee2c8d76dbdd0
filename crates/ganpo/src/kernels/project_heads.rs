//! A decoder's query, key or value projection straight into the attention layout, rotated:
//! `rope(split_heads(x Wᵀ + b))` as one op, `[batch, seq, d]` → `[batch, heads, seq, head_dim]`.
//!
//! Composed, the projection's `[batch, seq, heads · head_dim]` output, its transposed contiguous
//! copy and (for queries and keys) the rotated copy are three graph nodes that candle keeps until
//! the backward pass returns, each with its own zero-filled gradient: for a query, three times the
//! floats the attention op needs. This op keeps only its output; its backward un-rotates and
//! un-transposes the gradient in one pass into a temporary, then multiplies as a linear layer's.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{MatRef, matmul_new};
use super::linear::{bias_grad, biased_product, input_and_weight_grads};
use super::op_io::f32_inputs;
use super::rope::rotate_into;
use super::storage::with_f32;
use super::{buffer, fused, linear, rope};
use crate::{Error, Result};

/// Rotary tables for the op's positions: `cos` and `sin`, each `[seq, head_dim / 2]`.
pub type RopeTables<'a> = (&'a Tensor, &'a Tensor);

/// `rope(x Wᵀ + b)` split into `heads` heads: `x` `[batch, seq, d]`, `weight` `[heads · head_dim,
/// d]`, `bias` `[heads · head_dim]`; `rope` rotates each head in Hugging Face's "rotate half"
/// layout for positions `0..seq` (none: the heads are returned as projected). Differentiable in
/// `x`, `weight` and `bias`. The same function as [`project_heads_composed`].
pub fn project_heads(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    heads: usize,
    rope: Option<RopeTables<'_>>,
) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    let (out, in_dim) = weight.dims2()?;
    let head_dim = out.checked_div(heads).unwrap_or(0);
    let tables_fit =
        rope.is_none_or(|(c, s)| c.dims() == [t, head_dim / 2] && s.dims() == c.dims());
    if in_dim != d
        || head_dim == 0
        || head_dim * heads != out
        || !head_dim.is_multiple_of(2)
        || !tables_fit
    {
        return Err(Error::Training(format!(
            "head projection: input {:?}, weight {:?}, {heads} heads, rope tables {:?}",
            x.dims(),
            weight.dims(),
            rope.map(|(c, _)| c.dims().to_vec())
        )));
    }
    let mut all: Vec<&Tensor> = vec![x, weight];
    all.extend(bias);
    if let Some((c, s)) = rope {
        all.extend([c, s]);
    }
    if !fused(&all) {
        return project_heads_composed(x, weight, bias, heads, rope);
    }
    let op = ProjectHeads {
        dims: Dims {
            b,
            t,
            heads,
            head_dim,
        },
        rope: rope
            .map(|(c, s)| Ok::<_, Error>((c.contiguous()?, s.contiguous()?)))
            .transpose()?,
    };
    let (x, w) = (x.contiguous()?, weight.contiguous()?);
    Ok(match bias {
        Some(bias) => x.apply_op3(&w, &bias.contiguous()?, op)?,
        None => x.apply_op2(&w, op)?,
    })
}

/// The same function from the ops it replaces: the linear layer, a reshape and transpose to heads,
/// and [`rope`].
pub fn project_heads_composed(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    heads: usize,
    rope_tables: Option<RopeTables<'_>>,
) -> Result<Tensor> {
    let (b, t, _) = x.dims3()?;
    let y = linear(x, weight, bias)?;
    let head_dim = y.dim(2)? / heads.max(1);
    let y = y
        .reshape((b, t, heads, head_dim))?
        .transpose(1, 2)?
        .contiguous()?;
    match rope_tables {
        Some((cos, sin)) => rope(&y, cos, sin),
        None => Ok(y),
    }
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    heads: usize,
    head_dim: usize,
}

struct ProjectHeads {
    dims: Dims,
    rope: Option<(Tensor, Tensor)>,
}

impl ProjectHeads {
    /// Runs `f` on the rotary tables' data (`None` without rotation).
    fn with_tables<R>(
        &self,
        f: impl FnOnce(Option<(&[f32], &[f32])>) -> candle_core::Result<R>,
    ) -> candle_core::Result<R> {
        match &self.rope {
            None => f(None),
            Some((c, s)) => with_f32(c, "rope cos", |c| {
                with_f32(s, "rope sin", |s| f(Some((c, s))))
            }),
        }
    }

    /// The product `x Wᵀ (+ b)` as `[b · t, heads · head_dim]`, then rotated into the head layout.
    fn forward(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> candle_core::Result<Vec<f32>> {
        let Dims {
            b,
            t,
            heads,
            head_dim,
        } = self.dims;
        let (rows, out) = (b * t, heads * head_dim);
        if !x.len().is_multiple_of(rows.max(1)) || w.len() != out * (x.len() / rows.max(1)) {
            candle_core::bail!("head projection: {} inputs, {} weights", x.len(), w.len());
        }
        let d = x.len() / rows;
        let (xm, wt) = (
            MatRef::row_major(x, rows, d),
            MatRef::row_major(w, out, d).t(),
        );
        let y = match bias {
            Some(bias) => biased_product(xm, wt, bias)?,
            None => matmul_new(xm, wt)?,
        };
        self.with_tables(|tables| Ok(relayout(&y, self.dims, tables, 1.0)))
    }
}

/// Moves `src` between the row layout `[b · t, heads · head_dim]` and the head layout
/// `[b, heads, t, head_dim]`, rotating each head by `sign` · its angle when `tables` are given:
/// `sign = 1` takes rows to heads and rotates (the forward); `sign = −1` takes heads to rows and
/// rotates back (the backward of an orthogonal rotation is its inverse).
fn relayout(src: &[f32], dims: Dims, tables: Option<(&[f32], &[f32])>, sign: f32) -> Vec<f32> {
    let Dims {
        b,
        t,
        heads,
        head_dim: hd,
    } = dims;
    let (half, row) = (hd / 2, heads * hd);
    let mut out = buffer::uninit(src.len());
    // One task per (batch, head): it writes that head's `t × hd` block in the head layout, or its
    // `hd`-wide column strip of every row in the row layout.
    let block = t * hd;
    let to_heads = sign > 0.0;
    let dst_ptr = out.as_mut_ptr() as usize;
    (0..b * heads).into_par_iter().for_each(|task| {
        let (bi, h) = (task / heads, task % heads);
        for pos in 0..t {
            let rows_at = (bi * t + pos) * row + h * hd;
            let heads_at = task * block + pos * hd;
            let (from, to) = if to_heads {
                (rows_at, heads_at)
            } else {
                (heads_at, rows_at)
            };
            let x = &src[from..from + hd];
            // SAFETY: `to..to + hd` is inside `out` (both layouts index `b · heads · t · hd`
            // slots), and no two (task, pos) pairs write the same slots: in the head layout each
            // task owns its block, in the row layout each (batch, position, head) its strip.
            let o = unsafe {
                std::slice::from_raw_parts_mut(
                    (dst_ptr as *mut std::mem::MaybeUninit<f32>).add(to),
                    hd,
                )
            };
            match tables {
                None => {
                    for (o, &x) in o.iter_mut().zip(x) {
                        o.write(x);
                    }
                }
                Some((cos, sin)) => {
                    let (c, s) = (&cos[pos * half..][..half], &sin[pos * half..][..half]);
                    rotate_into(x, c, s, sign, o);
                }
            }
        }
    });
    // SAFETY: the tasks cover every (batch, head, position) and write all `hd` slots of each.
    unsafe { buffer::assume_init(out) }
}

impl CustomOp2 for ProjectHeads {
    fn name(&self) -> &'static str {
        "project-heads"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let [x, w] = f32_inputs(
            CustomOp2::name(self),
            [(s1, l1, "input"), (s2, l2, "weight")],
        )?;
        Ok((CpuStorage::F32(self.forward(x, w, None)?), self.shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.grads(x, w, None, grad)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for ProjectHeads {
    fn name(&self) -> &'static str {
        "project-heads-biased"
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
        let [x, w, bias] = f32_inputs(
            CustomOp3::name(self),
            [(s1, l1, "input"), (s2, l2, "weight"), (s3, l3, "bias")],
        )?;
        Ok((
            CpuStorage::F32(self.forward(x, w, Some(bias))?),
            self.shape(),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.grads(x, w, Some(bias), grad)
    }
}

impl ProjectHeads {
    fn shape(&self) -> Shape {
        let Dims {
            b,
            t,
            heads,
            head_dim,
        } = self.dims;
        Shape::from((b, heads, t, head_dim))
    }

    /// The gradient in the row layout (un-rotated), then the linear layer's input, weight and bias
    /// gradients from it, each only when its operand is tracked.
    fn grads(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Dims {
            b,
            t,
            heads,
            head_dim,
        } = self.dims;
        let (rows, out) = (b * t, heads * head_dim);
        let grad = grad.contiguous()?;
        let gy = with_f32(&grad, "head projection gradient", |g| {
            if g.len() != rows * out {
                candle_core::bail!(
                    "head projection: a gradient of {} for {rows} × {out}",
                    g.len()
                );
            }
            self.with_tables(|tables| Ok(relayout(g, self.dims, tables, -1.0)))
        })?;
        let gy = Tensor::from_vec(gy, (b, t, out), grad.device())?;
        let (dx, dw) = input_and_weight_grads(x, w, &gy)?;
        let db = bias.map(|bias| bias_grad(bias, &gy)).transpose()?.flatten();
        Ok((dx, dw, db))
    }
}
