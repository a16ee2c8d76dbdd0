//! Scaled dot-product attention over grouped-query heads, `softmax(q kᵀ · scale + mask) v`, as one
//! op with its own backward pass.
//!
//! Composed from candle primitives, attention keeps the `[batch, heads, q_len, k_len]` scores and
//! probabilities of every layer for the backward pass (2 × 19 MB per layer at 8 × 256 tokens with 9
//! heads), and candle's backward adds each of their gradients into a fresh zero tensor. This op keeps
//! only each query row's softmax maximum and normalizer (as flash attention does) and recomputes
//! the probabilities during backward, one `[q_len, k_len]` head at a time in a per-task scratch
//! buffer. The output comes out as `[batch, q_len, heads · head_dim]`, the layout the output
//! projection reads, so no transposing copy is made either way.

mod compute;
mod heads;
mod ops;
mod raw;

pub(crate) use raw::{SavedAttention, SelfAttention};

use candle_core::Tensor;

use super::fused;
use super::softmax::masked_softmax_composed;
use crate::{Error, Result};
use ops::{Attention, Layout, Save};

/// The most probabilities (`batch · heads · len²`, 64 MiB of f32) that [`packed_attention`] keeps
/// for its backward instead of recomputing them from `q kᵀ`: the discriminator's short sequences
/// (12 × 8 × 256² = 6.3 M at `ganpo bench`'s default) skip a fifth of the backward's products.
const KEEP_PROBS_LIMIT: usize = 1 << 24;

/// Attention for queries `q` `[batch, heads, q_len, head_dim]` and keys and values `k`, `v`
/// `[batch, kv_heads, k_len, head_dim]`, where query head `h` reads key/value head
/// `h / (heads / kv_heads)`, under the additive `mask` `[batch, 1, q_len, k_len]` (0 where a query
/// may attend a key, a large negative number elsewhere). Returns `[batch, q_len, heads · head_dim]`.
///
/// `keep` (`[batch, heads, q_len, k_len]`, not differentiated) multiplies the probabilities before
/// they weight the values: dropout's mask, 0 or `1 / (1 − p)`.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f64,
    keep: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, h, t, d) = q.dims4()?;
    let (kb, kv, s, kd) = k.dims4()?;
    if kb != b || kd != d || v.dims() != k.dims() || kv == 0 || h % kv != 0 {
        return Err(Error::Training(format!(
            "attention: queries {:?}, keys {:?} and values {:?} do not fit together",
            q.dims(),
            k.dims(),
            v.dims()
        )));
    }
    check_constants("attention", mask, keep, [b, h, t, s])?;
    if !fused(&[q, k, v, mask]) || keep.is_some_and(|keep| !fused(&[keep])) {
        // (Contiguous for candle's products: `k` and `v` may be views into a key/value cache.)
        return attention_composed(q, &k.contiguous()?, &v.contiguous()?, mask, scale, keep);
    }
    let save = match q.track_op() || k.track_op() || v.track_op() {
        true => Save::Stats,
        false => Save::Nothing,
    };
    let op = Attention::new(Layout::Separate, mask, keep, scale, save)?;
    // Keys and values that need no gradient may be read in place from a key/value cache.
    let kv = |t: &Tensor| match save {
        Save::Nothing if ops::cache_slots_of(t.layout()).is_some() => Ok(t.clone()),
        _ => t.contiguous(),
    };
    Ok(q.contiguous()?.apply_op3(&kv(k)?, &kv(v)?, op)?)
}

/// Multi-head attention on the packed output of one fused q/k/v projection: `qkv`
/// `[batch, len, 3 · heads · head_dim]` holds each position's query, key and value side by side
/// (torch's `in_proj` layout). As [`attention`] with `heads` query and key/value heads, but the heads
/// are read in place and the gradient comes back packed the same way, so no per-head copies are
/// made and the backward produces one gradient instead of three slices' zero-padded ones. Up to
/// 2²⁴ probabilities (`batch · heads · len²`), the backward reads them from the forward instead
/// of recomputing them.
pub fn packed_attention(
    qkv: &Tensor,
    heads: usize,
    mask: &Tensor,
    scale: f64,
    keep: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, t, packed) = qkv.dims3()?;
    if heads == 0 || packed % (3 * heads) != 0 {
        return Err(Error::Training(format!(
            "packed attention: {packed} columns are not 3 · {heads} heads of equal size"
        )));
    }
    let d = packed / (3 * heads);
    check_constants("packed attention", mask, keep, [b, heads, t, t])?;
    if !fused(&[qkv, mask]) || keep.is_some_and(|keep| !fused(&[keep])) {
        let split = |i: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(2, i * heads * d, heads * d)?
                .reshape((b, t, heads, d))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        return attention_composed(&split(0)?, &split(1)?, &split(2)?, mask, scale, keep);
    }
    let save = match qkv.track_op() {
        true if b * heads * t * t <= KEEP_PROBS_LIMIT => Save::Probs,
        true => Save::Stats,
        false => Save::Nothing,
    };
    let op = Attention::new(Layout::Packed { heads }, mask, keep, scale, save)?;
    Ok(qkv.contiguous()?.apply_op1(op)?)
}

/// Fails unless `mask` is `[b, 1, t, s]` and `keep`, when given, `[b, h, t, s]`.
fn check_constants(
    what: &str,
    mask: &Tensor,
    keep: Option<&Tensor>,
    [b, h, t, s]: [usize; 4],
) -> Result<()> {
    if mask.dims() != [b, 1, t, s] {
        return Err(Error::Training(format!(
            "{what}: mask {:?} is not [{b}, 1, {t}, {s}]",
            mask.dims()
        )));
    }
    if let Some(keep) = keep.filter(|keep| keep.dims() != [b, h, t, s]) {
        return Err(Error::Training(format!(
            "{what}: dropout mask {:?} is not [{b}, {h}, {t}, {s}]",
            keep.dims()
        )));
    }
    Ok(())
}

/// The same function from differentiable candle primitives.
pub fn attention_composed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f64,
    keep: Option<&Tensor>,
) -> Result<Tensor> {
    grouped_attention_composed(q, k, v, |scores| {
        let probs = masked_softmax_composed(scores, mask, scale)?;
        Ok(match keep {
            Some(keep) => (probs * keep.detach())?,
            None => probs,
        })
    })
}

/// Grouped-query attention from differentiable candle primitives, with the probabilities made from
/// the `[batch, heads, q_len, k_len]` scores `q kᵀ` by `probs` (a masked softmax, possibly of
/// transformed scores). The query heads sharing a key/value head are stacked along the sequence
/// axis, so one batched product per key/value head serves the whole group and keys and values are
/// never copied per query head. Shapes and result as [`attention`].
pub fn grouped_attention_composed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    probs: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let (b, h, t, d) = q.dims4()?;
    let (kv, s) = (k.dim(1)?, k.dim(2)?);
    let group = h / kv;
    let qg = q.contiguous()?.reshape((b, kv, group * t, d))?;
    let scores = qg.matmul(&k.contiguous()?.t()?)?.reshape((b, h, t, s))?;
    Ok(probs(&scores)?
        .reshape((b, kv, group * t, s))?
        .matmul(&v.contiguous()?)?
        .reshape((b, h, t, d))?
        .transpose(1, 2)?
        .reshape((b, t, h * d))?)
}
