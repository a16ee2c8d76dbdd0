//! Packed multi-head self-attention on raw buffers, for ops that run whole layers or blocks with
//! their own backward (the discriminator's encoder stack, the decoder's attention block): the same
//! loops as the attention op, without a candle graph node.

use rayon::prelude::*;

use super::super::buffer;
use super::compute::{self, Constants, Dims, Saved};
use super::heads::Heads;

/// One self-attention call on the packed output of a fused q/k/v projection.
#[derive(Clone, Copy)]
pub(crate) struct SelfAttention<'a> {
    /// `[batch, len, (heads + 2 · kv_heads) · head_dim]`: each position's query, key and value
    /// heads side by side.
    pub qkv: &'a [f32],
    /// Sequences.
    pub batch: usize,
    /// Positions per sequence.
    pub len: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (they divide `heads`; query head `h` reads key/value head
    /// `h / (heads / kv_heads)`).
    pub kv_heads: usize,
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
        let parts = self.heads + 2 * self.kv_heads;
        if self.kv_heads == 0
            || !self.heads.is_multiple_of(self.kv_heads)
            || !row.is_multiple_of(parts)
            || row * self.batch * self.len != self.qkv.len()
            || self.mask.len() != self.batch * self.len * self.len
        {
            candle_core::bail!(
                "self-attention: {} q/k/v floats, {} mask floats for {} × {} positions, {} query \
                 and {} key/value heads",
                self.qkv.len(),
                self.mask.len(),
                self.batch,
                self.len,
                self.heads,
                self.kv_heads
            );
        }
        let head_dim = row / parts;
        let view = |heads: usize, first_head: usize| Heads {
            data: self.qkv,
            heads,
            len: self.len,
            dim: head_dim,
            slots: self.len,
            packed: Some((row, first_head * head_dim)),
        };
        let dims = Dims {
            batch: self.batch,
            heads: self.heads,
            kv_heads: self.kv_heads,
            q_len: self.len,
            k_len: self.len,
            head_dim,
        };
        Ok((
            view(self.heads, 0),
            view(self.kv_heads, self.heads),
            view(self.kv_heads, self.heads + self.kv_heads),
            dims,
        ))
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

/// The q, k and v gradients in the separate layout (`[batch, heads, len, dim]` for q,
/// `[batch, kv_heads, len, dim]` for k and v, concatenated) rearranged into the packed one
/// (`[batch, len, (heads + 2 · kv_heads) · dim]`).
pub(super) fn repack(grads: &[f32], dims: Dims) -> Vec<f32> {
    let (h, kv, t, d) = (dims.heads, dims.kv_heads, dims.q_len, dims.head_dim);
    let (q_part, kv_part) = (dims.batch * h * t * d, dims.batch * kv * t * d);
    let row = (h + 2 * kv) * d;
    let mut out = buffer::uninit(q_part + 2 * kv_part);
    out.par_chunks_mut(row).enumerate().for_each(|(r, dst)| {
        let (bi, i) = (r / t, r % t);
        // Head `j` of the row: query head j, then key head j − h, then value head j − h − kv.
        for (j, dst) in dst.chunks_exact_mut(d).enumerate() {
            let (start, heads, head) = match j {
                j if j < h => (0, h, j),
                j if j < h + kv => (q_part, kv, j - h),
                j => (q_part + kv_part, kv, j - h - kv),
            };
            let at = start + ((bi * heads + head) * t + i) * d;
            for (o, &x) in dst.iter_mut().zip(&grads[at..at + d]) {
                o.write(x);
            }
        }
    });
    // SAFETY: the rows cover `out`; each row's h + 2 kv chunks of d are all written.
    unsafe { buffer::assume_init(out) }
}
