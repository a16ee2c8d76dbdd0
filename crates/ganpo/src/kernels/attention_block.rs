//! The attention half of a pre-norm decoder layer as one op with a hand-written backward:
//! `y = x + Attn(rope(n W_qᵀ + b_q), rope(n W_kᵀ + b_k), n W_vᵀ + b_v) W_oᵀ`, `n = RMSNorm(x)`.
//!
//! Built from the per-op kernels (RMSNorm, three head projections, attention, the output
//! projection with the residual), the block is six graph nodes, and candle's backward gives their
//! inputs zero-filled gradient buffers to add into (the normalized input three times over). Here
//! the only candle input is `x`. The three projections are one product with the weights stacked
//! (`[W_q; W_k; W_v]`), whose output rows hold each position's query, key and value heads side by
//! side, rotated in place and read by the attention loops where they lie. The backward writes each
//! gradient once, accumulates the residual gradient in place, and hands the weights' gradients to
//! a [`ParamGrads`] store. The forward keeps the rotated q/k/v rows, the attention output and the
//! softmax statistics; the normalized input is recomputed.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::attention::{SavedAttention, SelfAttention};
use super::gemm::{MatRef, matmul, matmul_new};
use super::linear::{biased_product, column_sums};
use super::op_io::f32_inputs;
use super::param_grads::ParamGrads;
use super::rms_norm::{effective_weight, normalize, normalize_backward};
use super::rope::rotate_rows;
use super::storage::{with_f32, with_f32_all};
use super::{RopeTables, attention, buffer, fused, linear_residual, project_heads, rms_norm};
use crate::{Error, Result};

/// The block's weights (Hugging Face layouts; biases on q, k and v only, as Qwen2) and settings.
#[derive(Debug, Clone, Copy)]
pub struct AttentionBlock<'a> {
    /// The input RMSNorm's `[d]` weight.
    pub norm: &'a Tensor,
    /// `q_proj.weight` `[heads · head_dim, d]`.
    pub q: &'a Tensor,
    /// `k_proj.weight` `[kv_heads · head_dim, d]`.
    pub k: &'a Tensor,
    /// `v_proj.weight` `[kv_heads · head_dim, d]`.
    pub v: &'a Tensor,
    /// `o_proj.weight` `[d, heads · head_dim]`.
    pub o: &'a Tensor,
    /// `q_proj.bias`, `k_proj.bias`, `v_proj.bias`, when the model has them.
    pub qkv_bias: Option<[&'a Tensor; 3]>,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Rotary tables for positions `0..seq`, each `[seq, head_dim / 2]`.
    pub rope: RopeTables<'a>,
    /// Additive attention mask `[batch, 1, seq, seq]`.
    pub mask: &'a Tensor,
    /// The score scale.
    pub scale: f64,
    /// RMSNorm's ε.
    pub eps: f64,
    /// Gemma's `(1 + w)` norm scaling.
    pub add_one: bool,
}

impl AttentionBlock<'_> {
    /// Norm, q, k, v, o, then the q, k, v biases when present.
    fn params(&self) -> Vec<Tensor> {
        let mut all = vec![self.norm, self.q, self.k, self.v, self.o];
        all.extend(self.qkv_bias.into_iter().flatten());
        all.into_iter().cloned().collect()
    }
}

/// `x + Attention(RMSNorm(x))` for `x` `[batch, seq, d]`. Differentiable in `x` and in the
/// weights; the weights' gradients go to `grads` (drained by [`crate::model::CausalLm::backward`]).
/// Runs the composition of per-op kernels ([`attention_block_composed`]) off the CPU, for dtypes
/// other than f32, and when a weight is a variable but there is no `grads` to receive its gradient.
pub fn attention_block(
    x: &Tensor,
    block: &AttentionBlock<'_>,
    grads: Option<&ParamGrads>,
) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    let (q_dim, k_dim) = (block.q.dim(0)?, block.k.dim(0)?);
    let head_dim = q_dim.checked_div(block.heads).unwrap_or(0);
    let bias_fits = block.qkv_bias.is_none_or(|[bq, bk, bv]| {
        bq.dims() == [q_dim] && bk.dims() == [k_dim] && bv.dims() == [k_dim]
    });
    let fits = d > 0
        && head_dim > 0
        && head_dim.is_multiple_of(2)
        && block.heads * head_dim == q_dim
        && block.kv_heads > 0
        && block.heads.is_multiple_of(block.kv_heads)
        && block.kv_heads * head_dim == k_dim
        && block.norm.dims() == [d]
        && block.q.dims() == [q_dim, d]
        && block.k.dims() == [k_dim, d]
        && block.v.dims() == [k_dim, d]
        && block.o.dims() == [d, q_dim]
        && block.rope.0.dims() == [t, head_dim / 2]
        && block.rope.1.dims() == [t, head_dim / 2]
        && block.mask.dims() == [b, 1, t, t]
        && bias_fits;
    if !fits {
        return Err(Error::Training(format!(
            "attention block: input {:?}, q {:?}, k {:?}, v {:?}, o {:?}, {} / {} heads, mask {:?}",
            x.dims(),
            block.q.dims(),
            block.k.dims(),
            block.v.dims(),
            block.o.dims(),
            block.heads,
            block.kv_heads,
            block.mask.dims()
        )));
    }
    let params = block.params();
    let trained: Vec<bool> = params.iter().map(Tensor::is_variable).collect();
    let any_trained = trained.iter().any(|&t| t);
    let mut all: Vec<&Tensor> = vec![x, block.rope.0, block.rope.1, block.mask];
    all.extend(&params);
    if !fused(&all) || (any_trained && grads.is_none()) {
        return attention_block_composed(x, block);
    }
    let x = x.contiguous()?;
    let save = x.track_op() || any_trained;
    // The op's backward runs only for a tracked input (see `mlp_block`).
    let x = match any_trained && !x.track_op() {
        true => candle_core::Var::from_tensor(&x)?.into_inner(),
        false => x,
    };
    let op = AttentionOp {
        params: params
            .iter()
            .map(|p| p.contiguous())
            .collect::<candle_core::Result<_>>()?,
        trained,
        constants: [
            block.rope.0.contiguous()?,
            block.rope.1.contiguous()?,
            block.mask.contiguous()?,
        ],
        dims: Dims {
            b,
            t,
            d,
            heads: block.heads,
            kv_heads: block.kv_heads,
            head_dim,
        },
        scale: block.scale as f32,
        eps: block.eps as f32,
        add_one: block.add_one,
        grads: grads.cloned(),
        save,
        tape: Mutex::new(None),
    };
    Ok(x.apply_op1(op)?)
}

/// The same function from the per-op kernels (each with its own backward), in any dtype.
pub fn attention_block_composed(x: &Tensor, block: &AttentionBlock<'_>) -> Result<Tensor> {
    let n = rms_norm(x, block.norm, block.eps, block.add_one)?;
    let bias = |i: usize| block.qkv_bias.map(|b| b[i]);
    let q = project_heads(&n, block.q, bias(0), block.heads, Some(block.rope))?;
    let k = project_heads(&n, block.k, bias(1), block.kv_heads, Some(block.rope))?;
    let v = project_heads(&n, block.v, bias(2), block.kv_heads, None)?;
    let out = attention(&q, &k, &v, block.mask, block.scale, None)?;
    linear_residual(&out, block.o, x)
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    d: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Dims {
    /// Floats per row of the stacked projection: query, key and value heads.
    fn qkv_row(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.head_dim
    }
}

struct AttentionOp {
    /// Norm, q, k, v, o (and the q, k, v biases).
    params: Vec<Tensor>,
    trained: Vec<bool>,
    /// Rotary cos and sin, the mask.
    constants: [Tensor; 3],
    dims: Dims,
    scale: f32,
    eps: f32,
    add_one: bool,
    grads: Option<ParamGrads>,
    save: bool,
    /// Shared so that the graph can be back-propagated more than once, as candle allows.
    tape: Mutex<Option<Arc<Tape>>>,
}

/// What the forward keeps: the stacked weight, the rotated q/k/v rows, the attention output and
/// its softmax statistics.
struct Tape {
    w_qkv: Vec<f32>,
    qkv: Vec<f32>,
    out: Vec<f32>,
    saved: SavedAttention,
}

impl AttentionOp {
    /// The attention call on rotated q/k/v rows.
    fn attention<'a>(&self, qkv: &'a [f32], mask: &'a [f32]) -> SelfAttention<'a> {
        SelfAttention {
            qkv,
            batch: self.dims.b,
            len: self.dims.t,
            heads: self.dims.heads,
            kv_heads: self.dims.kv_heads,
            mask,
            keep: None,
            scale: self.scale,
        }
    }

    /// Rotates the query and key heads of q/k/v rows in place (`sign = −1`: back, for gradients).
    fn rotate(&self, qkv: &mut [f32], tables: (&[f32], &[f32]), sign: f32) {
        let Dims {
            t,
            heads,
            kv_heads,
            head_dim,
            ..
        } = self.dims;
        let rotated = (heads + kv_heads) * head_dim;
        rotate_rows(qkv, self.dims.qkv_row(), t, rotated, head_dim, tables, sign);
    }

    /// Runs `f` on the rotary tables and the mask.
    fn with_constants<R>(
        &self,
        f: impl FnOnce(&[f32], &[f32], &[f32]) -> candle_core::Result<R>,
    ) -> candle_core::Result<R> {
        with_f32_all(&self.constants, "attention block constant", |c| {
            f(c[0], c[1], c[2])
        })
    }
}

impl CustomOp1 for AttentionOp {
    fn name(&self) -> &'static str {
        "fused-attention-block"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let [x] = f32_inputs(self.name(), [(s, l, "input")])?;
        let Dims { b, t, d, .. } = self.dims;
        let (rows, row) = (b * t, self.dims.qkv_row());
        let q_dim = self.dims.heads * self.dims.head_dim;
        if x.len() != rows * d {
            candle_core::bail!(
                "attention block: {} input values for [{rows}, {d}]",
                x.len()
            )
        }
        let (out, tape) = with_f32_all(&self.params, "attention block weight", |w| {
            self.with_constants(|cos, sin, mask| {
                let n = normalize(x, &effective_weight(w[0], self.add_one), self.eps);
                let w_qkv = [w[1], w[2], w[3]].concat();
                let (nm, wm) = (
                    MatRef::row_major(&n, rows, d),
                    MatRef::row_major(&w_qkv, row, d).t(),
                );
                let mut qkv = match w.get(5..8) {
                    Some(bias) => biased_product(nm, wm, &bias.concat())?,
                    None => matmul_new(nm, wm)?,
                };
                drop(n);
                self.rotate(&mut qkv, (cos, sin), 1.0);
                let (o, saved) = self.attention(&qkv, mask).forward(false)?;
                let mut out = buffer::copy_par(x);
                let om = MatRef::row_major(&o, rows, q_dim);
                matmul(&mut out, om, MatRef::row_major(w[4], d, q_dim).t(), true)?;
                Ok((
                    out,
                    Tape {
                        w_qkv,
                        qkv,
                        out: o,
                        saved,
                    },
                ))
            })
        })?;
        if self.save {
            *self.tape.lock().map_err(|_| poisoned())? = Some(Arc::new(tape));
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let Some(tape) = self.tape.lock().map_err(|_| poisoned())?.clone() else {
            candle_core::bail!("attention block: a backward pass the forward kept nothing for")
        };
        let grad = grad.contiguous()?;
        let (dx, dws) = with_f32(x, "attention block input", |x| {
            with_f32(&grad, "attention block output gradient", |g| {
                with_f32_all(&self.params, "attention block weight", |w| {
                    self.with_constants(|cos, sin, mask| {
                        self.backward(x, g, w, (cos, sin, mask), &tape)
                    })
                })
            })
        })?;
        if let Some(grads) = &self.grads {
            grads.push_flat(&self.params, dws)?;
        }
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

/// `∂L/∂x` and the trained parameters' gradients (in [`AttentionOp::params`]' order).
type Grads = (Vec<f32>, Vec<Option<Vec<f32>>>);

impl AttentionOp {
    fn backward(
        &self,
        x: &[f32],
        g: &[f32],
        w: &[&[f32]],
        (cos, sin, mask): (&[f32], &[f32], &[f32]),
        tape: &Tape,
    ) -> candle_core::Result<Grads> {
        let Dims { b, t, d, .. } = self.dims;
        let (rows, row) = (b * t, self.dims.qkv_row());
        let q_dim = self.dims.heads * self.dims.head_dim;
        let k_dim = self.dims.kv_heads * self.dims.head_dim;
        if x.len() != rows * d || g.len() != rows * d || tape.qkv.len() != rows * row {
            candle_core::bail!("attention block: backward buffers do not fit [{rows}, {d}]")
        }
        let trained = |i: usize| self.trained.get(i).copied().unwrap_or(false);
        let gm = MatRef::row_major(g, rows, d);
        // ∂L/∂W_o = gᵀ o; ∂L/∂o = g W_o.
        let d_o = match trained(4) {
            true => Some(matmul_new(
                gm.t(),
                MatRef::row_major(&tape.out, rows, q_dim),
            )?),
            false => None,
        };
        let d_out = matmul_new(gm, MatRef::row_major(w[4], d, q_dim))?;
        // Through attention into the rotated q/k/v rows, then rotated back.
        let mut d_qkv = self
            .attention(&tape.qkv, mask)
            .backward(&d_out, &tape.out, &tape.saved)?;
        drop(d_out);
        self.rotate(&mut d_qkv, (cos, sin), -1.0);
        let dm = MatRef::row_major(&d_qkv, rows, row);
        // ∂L/∂[W_q; W_k; W_v] = d_qkvᵀ n, with n recomputed; split by rows.
        let norm_w = effective_weight(w[0], self.add_one);
        let (d_q, d_k, d_v) = match trained(1) || trained(2) || trained(3) {
            true => {
                let n = normalize(x, &norm_w, self.eps);
                let all = matmul_new(dm.t(), MatRef::row_major(&n, rows, d))?;
                let (q, kv) = all.split_at(q_dim * d);
                let (k, v) = kv.split_at(k_dim * d);
                let keep = |i: usize, part: &[f32]| trained(i).then(|| part.to_vec());
                (keep(1, q), keep(2, k), keep(3, v))
            }
            false => (None, None, None),
        };
        let biases = match self.params.len() > 5 && (trained(5) || trained(6) || trained(7)) {
            true => {
                let sums = column_sums(&d_qkv, row);
                let (q, kv) = sums.split_at(q_dim);
                let (k, v) = kv.split_at(k_dim);
                vec![
                    trained(5).then(|| q.to_vec()),
                    trained(6).then(|| k.to_vec()),
                    trained(7).then(|| v.to_vec()),
                ]
            }
            false => vec![None; self.params.len() - 5],
        };
        // ∂L/∂n = d_qkv [W_q; W_k; W_v]; ∂L/∂x = g (the residual) + the norm's backward.
        let dn = matmul_new(dm, MatRef::row_major(&tape.w_qkv, row, d))?;
        drop(d_qkv);
        let mut dx = buffer::copy_par(g);
        let d_norm = normalize_backward(x, &norm_w, &dn, self.eps, &mut dx);
        let mut all = vec![trained(0).then_some(d_norm), d_q, d_k, d_v, d_o];
        all.extend(biases);
        Ok((dx, all))
    }
}

fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg("attention block: a thread panicked holding its state".into())
}
