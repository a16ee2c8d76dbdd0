//! One encoder layer's forward on raw buffers, keeping what its backward reads.

use rayon::prelude::*;

use super::super::attention::SavedAttention;
use super::super::gelu;
use super::super::gemm::MatRef;
use super::super::layer_norm;
use super::super::linear::biased_product;
use super::{LayerDropout, Param, Shapes};

/// Elements per rayon task in the element-wise loops.
pub(super) const CHUNK: usize = 1 << 14;

/// What one layer's forward keeps for its backward (its input is the previous layer's output,
/// kept by the stack).
pub(super) struct LayerTape {
    /// LayerNorm₁ of the input `[N, w]`.
    pub h1: Vec<f32>,
    /// The packed q/k/v projection `[N, 3w]`.
    pub qkv: Vec<f32>,
    /// The attention output before its projection `[N, w]`.
    pub attention: Vec<f32>,
    /// The attention's probabilities or row statistics.
    pub saved: SavedAttention,
    /// The residual stream after the attention block `[N, w]`.
    pub x1: Vec<f32>,
    /// LayerNorm₂ of `x1` `[N, w]`.
    pub h2: Vec<f32>,
    /// The feed-forward pre-activation `[N, ffn]`.
    pub u: Vec<f32>,
    /// The feed-forward hidden layer after GELU and dropout `[N, ffn]`; pooled (`[R, ffn]`) when the
    /// layer ended in the pool ([`End::Pooled`]).
    pub g: Vec<f32>,
}

/// How a layer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// The full output `[N, w]`.
    Full,
    /// The masked mean pool of the output `[R, w]`, with the output projection applied after the
    /// pool (`pool(x + W₂ g + b₂) = pool(x) + W₂ pool(g) + b₂`: exact without dropout).
    Pooled,
}

/// `x Wᵀ + b` for row-major `x` `[rows, in]` and `W` `[out, in]`.
pub(super) fn linear(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    inputs: usize,
) -> candle_core::Result<Vec<f32>> {
    let rows = x.len() / inputs;
    let weight = MatRef::row_major(w, b.len(), inputs).t();
    biased_product(MatRef::row_major(x, rows, inputs), weight, b)
}

/// One layer on `x` `[N, w]` with parameters `p` (indexed by [`Param`]).
pub(super) fn layer(
    x: &[f32],
    p: &[&[f32]],
    s: &Shapes<'_>,
    dropout: Option<&LayerDropout>,
    end: End,
    keep_probs: bool,
) -> candle_core::Result<(Vec<f32>, LayerTape)> {
    let w = s.width;
    let h1 = layer_norm::forward_rows(
        x,
        p[Param::Norm1W as usize],
        p[Param::Norm1B as usize],
        s.eps,
    );
    let qkv = linear(&h1, p[Param::InW as usize], p[Param::InB as usize], w)?;
    let attention = s.attention(&qkv, dropout);
    let (o, saved) = attention.forward(keep_probs)?;
    let mut x1 = linear(&o, p[Param::OutW as usize], p[Param::OutB as usize], w)?;
    residual(
        x,
        &mut x1,
        dropout.map(|d| (d.attention_output.as_slice(), d.scale)),
    );
    let h2 = layer_norm::forward_rows(
        &x1,
        p[Param::Norm2W as usize],
        p[Param::Norm2B as usize],
        s.eps,
    );
    let u = linear(&h2, p[Param::L1W as usize], p[Param::L1B as usize], w)?;
    let g = gelu::forward_slice(&u, dropout.map(|d| (d.hidden.as_slice(), d.scale)));
    let (out, g) = match end {
        End::Full => {
            let mut out = linear(&g, p[Param::L2W as usize], p[Param::L2B as usize], s.ffn)?;
            residual(
                &x1,
                &mut out,
                dropout.map(|d| (d.output.as_slice(), d.scale)),
            );
            (out, g)
        }
        End::Pooled => {
            let pooled_g = s.pool(&g, s.ffn);
            let mut out = linear(
                &pooled_g,
                p[Param::L2W as usize],
                p[Param::L2B as usize],
                s.ffn,
            )?;
            for (o, x) in out.iter_mut().zip(s.pool(&x1, w)) {
                *o += x;
            }
            (out, pooled_g)
        }
    };
    let tape = LayerTape {
        h1,
        qkv,
        attention: o,
        saved,
        x1,
        h2,
        u,
        g,
    };
    Ok((out, tape))
}

/// `h ← x + h ⊙ m · scale` (dropout's mask and scale), or `x + h` without dropout.
fn residual(x: &[f32], h: &mut [f32], dropout: Option<(&[f32], f32)>) {
    let chunks = h.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK));
    match dropout {
        None => chunks.for_each(|(h, x)| {
            for (h, &x) in h.iter_mut().zip(x) {
                *h += x;
            }
        }),
        Some((m, scale)) => chunks.zip(m.par_chunks(CHUNK)).for_each(|((h, x), m)| {
            for ((h, &x), &m) in h.iter_mut().zip(x).zip(m) {
                *h = x + *h * m * scale;
            }
        }),
    }
}
