//! The GANPO discriminator's stack of pre-LN transformer encoder layers followed by its masked mean
//! pool, as one op with a hand-written backward.
//!
//! Built from per-layer custom ops (LayerNorm, the linear layers, attention, GELU, the dropout
//! residuals), every edge of candle's graph costs the backward pass a zero-filled gradient buffer
//! and an addition into it, and every parameter gradient a separate op. Here the forward runs the
//! layers on raw buffers and keeps what the backward reads; the backward writes each gradient
//! once, accumulates the residual stream's gradient in place, and returns `∂L/∂x`. The
//! parameters are not inputs of the op (candle's custom ops take at most three): their gradients
//! go to a [`super::ParamGrads`] store that the caller drains after the backward pass
//! ([`crate::ganpo::Discriminator::take_grads`]).
//!
//! Each layer is torch's `TransformerEncoderLayer(norm_first=True, activation="gelu")`:
//! `x₁ = x + D(W_o Attn(LN₁(x)) + b_o)`, `x₂ = x₁ + D(W₂ D(GELU(W₁ LN₂(x₁) + b₁)) + b₂)`, with
//! dropout `D` also on the attention probabilities. Without dropout in the last layer its output
//! projection is applied after the pool (exact: the pool is a weighted mean).

mod backward;
mod forward;
mod op;

use candle_core::{Tensor, Var};
use rayon::prelude::*;

use super::attention::SelfAttention;
pub use op::encoder_stack;

/// The parameters of one layer, in this order (torch's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `self_attn.in_proj_weight` `[3w, w]`.
    InW,
    /// `self_attn.in_proj_bias` `[3w]`.
    InB,
    /// `self_attn.out_proj.weight` `[w, w]`.
    OutW,
    /// `self_attn.out_proj.bias` `[w]`.
    OutB,
    /// `linear1.weight` `[ffn, w]`.
    L1W,
    /// `linear1.bias` `[ffn]`.
    L1B,
    /// `linear2.weight` `[w, ffn]`.
    L2W,
    /// `linear2.bias` `[w]`.
    L2B,
    /// `norm1.weight` `[w]`.
    Norm1W,
    /// `norm1.bias` `[w]`.
    Norm1B,
    /// `norm2.weight` `[w]`.
    Norm2W,
    /// `norm2.bias` `[w]`.
    Norm2B,
}

/// The number of parameters of a layer.
pub const PARAMS: usize = 12;

/// The dropout of one layer's training forward: its four masks over the stacked batch and the
/// inverted-dropout scale `1 / (1 − p)`.
#[derive(Debug, Clone)]
pub struct LayerDropout {
    /// Factors of the attention probabilities `[R, heads, T, T]`: 0 or `scale`.
    pub attention: Vec<f32>,
    /// Mask of the attention block's output `[R, T, w]`: 0 or 1.
    pub attention_output: Vec<f32>,
    /// Mask of the feed-forward hidden layer `[R, T, ffn]`: 0 or 1.
    pub hidden: Vec<f32>,
    /// Mask of the feed-forward output `[R, T, w]`: 0 or 1.
    pub output: Vec<f32>,
    /// `1 / (1 − p)`.
    pub scale: f32,
}

/// One layer's inputs to [`encoder_stack`].
#[derive(Debug, Clone)]
pub struct StackLayer {
    /// The parameters, indexed by [`Param`] (f32, CPU, contiguous).
    pub params: Vec<Tensor>,
    /// The variables whose gradients the parameters' are (same order), or none when the layer's
    /// parameters are constants (frozen).
    pub vars: Option<Vec<Var>>,
    /// Attention heads (they divide the width).
    pub heads: usize,
    /// Dropout masks (training), or none.
    pub dropout: Option<LayerDropout>,
}

/// The masked mean pool of the stacked batch and the attention mask it implies.
#[derive(Debug, Clone)]
pub struct StackPool {
    /// `[R, T]`: 1 for positions that are attended to (as keys) and pooled, 0 elsewhere.
    pub weights: Vec<f32>,
}

/// Shapes and constants shared by every layer of one call.
pub(super) struct Shapes<'a> {
    pub rows: usize,
    pub len: usize,
    pub width: usize,
    pub ffn: usize,
    pub heads: usize,
    pub eps: f32,
    /// `[R, T, T]` additive attention mask.
    pub attention_mask: &'a [f32],
    /// `[R, T]` pooling weights, each row divided by its count.
    pub pool_weights: &'a [f32],
}

impl Shapes<'_> {
    /// The attention call of a layer with packed projections `qkv`.
    fn attention<'b>(
        &'b self,
        qkv: &'b [f32],
        dropout: Option<&'b LayerDropout>,
    ) -> SelfAttention<'b> {
        SelfAttention {
            qkv,
            batch: self.rows,
            len: self.len,
            heads: self.heads,
            kv_heads: self.heads,
            mask: self.attention_mask,
            keep: dropout.map(|d| d.attention.as_slice()),
            scale: 1.0 / ((self.width / self.heads) as f32).sqrt(),
        }
    }

    /// The masked mean over positions of `x` `[R, T, cols]` → `[R, cols]`.
    fn pool(&self, x: &[f32], cols: usize) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * cols];
        out.par_chunks_mut(cols)
            .zip(x.par_chunks(self.len * cols))
            .zip(self.pool_weights.par_chunks(self.len))
            .for_each(|((out, x), weights)| {
                for (row, &wt) in x.chunks_exact(cols).zip(weights) {
                    if wt != 0.0 {
                        for (o, &v) in out.iter_mut().zip(row) {
                            *o += wt * v;
                        }
                    }
                }
            });
        out
    }

    /// The pool's backward: `[R, cols]` → `[R, T, cols]`, each position its row's gradient times
    /// its pooling weight.
    fn unpool(&self, d: &[f32], cols: usize) -> Vec<f32> {
        let mut out = super::buffer::uninit(self.rows * self.len * cols);
        out.par_chunks_mut(self.len * cols)
            .zip(d.par_chunks(cols))
            .zip(self.pool_weights.par_chunks(self.len))
            .for_each(|((out, d), weights)| {
                for (row, &wt) in out.chunks_exact_mut(cols).zip(weights) {
                    for (o, &g) in row.iter_mut().zip(d) {
                        o.write(wt * g);
                    }
                }
            });
        // SAFETY: the sequences cover `out`, and every position's row is written in full.
        unsafe { super::buffer::assume_init(out) }
    }
}
