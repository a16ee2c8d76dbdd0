//! Packed multi-head self-attention on raw buffers, for ops that run whole layers with their own
//! backward (the discriminator's encoder stack): the same loops as the attention op, without a
//! candle graph node.

use rayon::prelude::*;

use super::super::buffer;
use super::compute::{self, Constants, Dims, Saved};
use super::heads::Heads;

/// One self-attention call on the packed output of a fused q/k/v projection.
#[derive(Clone, Copy)]
pub(crate) struct SelfAttention<'a> {
    /// `[batch, len, 3 · heads · head_dim]`: each position's query, key and value side by side.
    pub qkv: &'a [f32],
    /// Sequences.
    pub batch: usize,
    /// Positions per sequence.
    pub len: usize,
    /// Attention heads.
    pub heads: usize,
    /// Additive mask `[batch, len, len]`: 0 where a query may attend a key, very negative elsewhere.
    pub mask: &'a [f32],
    /// Dropout factors of the probabilities `[batch, heads, len, len]` (0 or `1 / (1 − p)`).
    pub keep: Option<&'a [f32]>,
    /// The score scale, `1 / √head_dim`.
    pub scale: f32,
}

/// What the forward kept for the backward (opaque outside the attention kernels).
pub(crate) struct SavedAttention(Saved);

impl SelfAttention<'_> {
    fn views(&self) -> candle_core::Result<(Heads<'_>, Heads<'_>, Heads<'_>, Dims)> {
        let row = self.qkv.len() / (self.batch * self.len).max(1);
        if self.heads == 0
            || !row.is_multiple_of(3 * self.heads)
            || row * self.batch * self.len != self.qkv.len()
            || self.mask.len() != self.batch * self.len * self.len
        {
            candle_core::bail!(
                "self-attention: {} q/k/v floats, {} mask floats for {} × {} positions and {} heads",
                self.qkv.len(),
                self.mask.len(),
                self.batch,
                self.len,
                self.heads
            );
        }
        let head_dim = row / (3 * self.heads);
        let view = |part: usize| Heads {
            data: self.qkv,
            heads: self.heads,
            len: self.len,
            dim: head_dim,
            packed: Some((row, part * self.heads * head_dim)),
        };
        let dims = Dims {
            batch: self.batch,
            heads: self.heads,
            kv_heads: self.heads,
            q_len: self.len,
            k_len: self.len,
            head_dim,
        };
        Ok((view(0), view(1), view(2), dims))
    }

    fn constants(&self) -> Constants<'_> {
        Constants {
            mask: self.mask,
            keep: self.keep,
            scale: self.scale,
        }
    }

    /// The output `[batch, len, heads · head_dim]` and what [`SelfAttention::backward`] needs
    /// (the probabilities when `keep_probs`, else each row's softmax statistics).
    pub fn forward(&self, keep_probs: bool) -> candle_core::Result<(Vec<f32>, SavedAttention)> {
        let (q, k, v, dims) = self.views()?;
        let (out, saved) = compute::forward(q, k, v, dims, self.constants(), keep_probs)?;
        Ok((out, SavedAttention(saved)))
    }

    /// The packed q/k/v gradient (the layout of `qkv`) from the output gradient `g` and the
    /// output `o` of [`SelfAttention::forward`].
    pub fn backward(
        &self,
        g: &[f32],
        o: &[f32],
        saved: &SavedAttention,
    ) -> candle_core::Result<Vec<f32>> {
        let (q, k, v, dims) = self.views()?;
        let grads = compute::backward((q, k, v), (g, o), dims, self.constants(), &saved.0)?;
        Ok(repack(&grads, dims))
    }
}

/// The q, k and v gradients in the separate layout (`[batch, heads, len, dim]` each, concatenated)
/// rearranged into the packed one (`[batch, len, 3 · heads · dim]`).
pub(super) fn repack(grads: &[f32], dims: Dims) -> Vec<f32> {
    let (h, t, d) = (dims.heads, dims.q_len, dims.head_dim);
    let part = dims.batch * h * t * d;
    let mut out = buffer::uninit(3 * part);
    out.par_chunks_mut(3 * h * d)
        .enumerate()
        .for_each(|(row, dst)| {
            let (bi, i) = (row / t, row % t);
            for (p, dst) in dst.chunks_exact_mut(h * d).enumerate() {
                for (head, dst) in dst.chunks_exact_mut(d).enumerate() {
                    let at = p * part + ((bi * h + head) * t + i) * d;
                    for (o, &x) in dst.iter_mut().zip(&grads[at..at + d]) {
                        o.write(x);
                    }
                }
            }
        });
    // SAFETY: the rows cover `out`; each row's 3 · h chunks of d are all written.
    unsafe { buffer::assume_init(out) }
}
