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

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{MatRef, matmul_into};
use super::softmax::{masked_softmax_composed, softmax_row};
use super::storage::{contiguous_f32, with_f32};
use super::{fused, vexp};
use crate::{Error, Result};

/// Query rows per forward task: enough for an efficient product, small enough to balance.
const QUERY_BLOCK: usize = 64;

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
    if mask.dims() != [b, 1, t, s] {
        return Err(Error::Training(format!(
            "attention: mask {:?} is not [{b}, 1, {t}, {s}]",
            mask.dims()
        )));
    }
    if let Some(keep) = keep.filter(|keep| keep.dims() != [b, h, t, s]) {
        return Err(Error::Training(format!(
            "attention: dropout mask {:?} is not [{b}, {h}, {t}, {s}]",
            keep.dims()
        )));
    }
    if !fused(&[q, k, v, mask]) || keep.is_some_and(|keep| !fused(&[keep])) {
        return attention_composed(q, k, v, mask, scale, keep);
    }
    let op = Attention {
        mask: mask.contiguous()?,
        keep: keep.map(|keep| keep.detach().contiguous()).transpose()?,
        scale: scale as f32,
        save: q.track_op() || k.track_op() || v.track_op(),
        stats: Mutex::new(None),
    };
    Ok(q.contiguous()?
        .apply_op3(&k.contiguous()?, &v.contiguous()?, op)?)
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
    let scores = qg.matmul(&k.t()?)?.reshape((b, h, t, s))?;
    Ok(probs(&scores)?
        .reshape((b, kv, group * t, s))?
        .matmul(&v.contiguous()?)?
        .reshape((b, h, t, d))?
        .transpose(1, 2)?
        .reshape((b, t, h * d))?)
}

/// Per query row and head, `[max, 1 / Σ exp(z − max)]` of the masked, scaled scores `z`, laid out
/// `[batch, q_len, heads, 2]`: enough to rebuild the probabilities from `q kᵀ` in backward.
type RowStats = Arc<Vec<f32>>;

struct Attention {
    mask: Tensor,
    keep: Option<Tensor>,
    scale: f32,
    /// Whether to keep the row statistics (only when some input needs a gradient).
    save: bool,
    stats: Mutex<Option<RowStats>>,
}

/// The op's queries, keys and values, and its shapes `(batch, heads, kv_heads, q_len, k_len,
/// head_dim)`.
type Inputs<'a> = (&'a [f32], &'a [f32], &'a [f32], [usize; 6]);

fn inputs<'a>(
    (s1, l1): (&'a CpuStorage, &Layout),
    (s2, l2): (&'a CpuStorage, &Layout),
    (s3, l3): (&'a CpuStorage, &Layout),
) -> candle_core::Result<Inputs<'a>> {
    let (b, h, t, d) = l1.shape().dims4()?;
    let (_, kv, s, _) = l2.shape().dims4()?;
    Ok((
        contiguous_f32(s1, l1, "attention queries")?,
        contiguous_f32(s2, l2, "attention keys")?,
        contiguous_f32(s3, l3, "attention values")?,
        [b, h, kv, t, s, d],
    ))
}

/// Rebuilds a row of probabilities in place from its scores and saved statistics.
fn probs_row(row: &mut [f32], mask: &[f32], scale: f32, max: f32, inv: f32) {
    for (z, &m) in row.iter_mut().zip(mask) {
        *z = vexp::exp(*z * scale + m - max) * inv;
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "fused-attention"
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
        let (q, k, v, [b, h, kv, t, s, d]) = inputs((s1, l1), (s2, l2), (s3, l3))?;
        let (group, row_len) = (h / kv, h * d);
        let mut out = vec![0f32; b * t * row_len];
        let mut stats = vec![0f32; b * t * h * 2];
        with_f32(&self.mask, "attention mask", |mask| {
            with_keep(self.keep.as_ref(), |keep| {
                out.par_chunks_mut(t * row_len)
                    .zip(stats.par_chunks_mut(t * h * 2))
                    .enumerate()
                    .try_for_each(|(bi, (out, stats))| {
                        out.par_chunks_mut(QUERY_BLOCK * row_len)
                            .zip(stats.par_chunks_mut(QUERY_BLOCK * h * 2))
                            .enumerate()
                            .try_for_each(|(block, (out, stats))| {
                                let (r0, m) = (block * QUERY_BLOCK, out.len() / row_len);
                                let mut p = vec![0f32; m * s];
                                for head in 0..h {
                                    let kv_at = (bi * kv + head / group) * s * d;
                                    let q_at = ((bi * h + head) * t + r0) * d;
                                    let qm = MatRef::row_major(&q[q_at..q_at + m * d], m, d);
                                    let km = MatRef::row_major(&k[kv_at..kv_at + s * d], s, d);
                                    let vm = MatRef::row_major(&v[kv_at..kv_at + s * d], s, d);
                                    matmul_into(&mut p, s, qm, km.t(), false, 1)?;
                                    for (i, row) in p.chunks_exact_mut(s).enumerate() {
                                        let mask_at = (bi * t + r0 + i) * s;
                                        let (max, inv) = softmax_row(
                                            row,
                                            &mask[mask_at..mask_at + s],
                                            self.scale,
                                        );
                                        stats[(i * h + head) * 2] = max;
                                        stats[(i * h + head) * 2 + 1] = inv;
                                        if let Some(keep) = keep {
                                            let at = ((bi * h + head) * t + r0 + i) * s;
                                            scale_row(row, &keep[at..at + s]);
                                        }
                                    }
                                    let pm = MatRef::row_major(&p, m, s);
                                    matmul_into(&mut out[head * d..], row_len, pm, vm, false, 1)?;
                                }
                                Ok::<(), candle_core::Error>(())
                            })
                    })
            })
        })?;
        if self.save {
            *self.stats.lock().map_err(|_| poisoned())? = Some(Arc::new(stats));
        }
        Ok((CpuStorage::F32(out), Shape::from((b, t, row_len))))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = self.stats.lock().map_err(|_| poisoned())?.clone();
        let Some(stats) = stats else {
            candle_core::bail!("fused attention: backward without the forward's row statistics")
        };
        let grads = q.apply_op3_no_bwd(
            k,
            v,
            &AttentionGrad {
                grad: grad.contiguous()?,
                out: out.contiguous()?,
                mask: self.mask.clone(),
                keep: self.keep.clone(),
                scale: self.scale,
                stats,
            },
        )?;
        let (nq, nk) = (q.elem_count(), k.elem_count());
        Ok((
            Some(grads.narrow(0, 0, nq)?.reshape(q.shape())?),
            Some(grads.narrow(0, nq, nk)?.reshape(k.shape())?),
            Some(grads.narrow(0, nq + nk, nk)?.reshape(v.shape())?),
        ))
    }
}

fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg("fused attention: a thread panicked holding the row statistics".into())
}

/// The gradients of queries, keys and values, concatenated flat in that order.
struct AttentionGrad {
    grad: Tensor,
    out: Tensor,
    mask: Tensor,
    keep: Option<Tensor>,
    scale: f32,
    stats: RowStats,
}

impl CustomOp3 for AttentionGrad {
    fn name(&self) -> &'static str {
        "fused-attention-grad"
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
        let (q, k, v, [_, h, kv, t, s, d]) = inputs((s1, l1), (s2, l2), (s3, l3))?;
        let (group, row_len, scale) = (h / kv, h * d, self.scale);
        let mut grads = vec![0f32; q.len() + 2 * k.len()];
        let (dq, dkv) = grads.split_at_mut(q.len());
        let (dk, dv) = dkv.split_at_mut(k.len());
        with_f32(&self.grad, "attention output gradient", |g| {
            with_f32(&self.out, "attention output", |o| {
                with_f32(&self.mask, "attention mask", |mask| {
                    with_keep(self.keep.as_ref(), |keep| {
                        // One task per (batch, key/value head): it owns that head's key and value
                        // gradients and the query gradients of its group.
                        dq.par_chunks_mut(group * t * d)
                            .zip(dk.par_chunks_mut(s * d).zip(dv.par_chunks_mut(s * d)))
                            .enumerate()
                            .try_for_each(|(task, (dq, (dk, dv)))| {
                                let bi = task / kv;
                                let km =
                                    MatRef::row_major(&k[task * s * d..(task + 1) * s * d], s, d);
                                let vm =
                                    MatRef::row_major(&v[task * s * d..(task + 1) * s * d], s, d);
                                let batch_rows = bi * t * row_len..(bi + 1) * t * row_len;
                                let (mut p, mut ds) = (vec![0f32; t * s], vec![0f32; t * s]);
                                let mut kept = vec![0f32; if keep.is_some() { t * s } else { 0 }];
                                for (j, dq) in dq.chunks_exact_mut(t * d).enumerate() {
                                    let head = task % kv * group + j;
                                    let q_at = (bi * h + head) * t * d;
                                    let qm = MatRef::row_major(&q[q_at..q_at + t * d], t, d);
                                    // This head's columns of the batch row's output gradient.
                                    let gm = MatRef {
                                        data: &g[batch_rows.clone()][head * d..],
                                        rows: t,
                                        cols: d,
                                        row_stride: row_len,
                                        col_stride: 1,
                                    };
                                    matmul_into(&mut p, s, qm, km.t(), false, 1)?;
                                    for (i, row) in p.chunks_exact_mut(s).enumerate() {
                                        let at = ((bi * t + i) * h + head) * 2;
                                        let mask_at = (bi * t + i) * s;
                                        let (max, inv) = (self.stats[at], self.stats[at + 1]);
                                        probs_row(
                                            row,
                                            &mask[mask_at..mask_at + s],
                                            scale,
                                            max,
                                            inv,
                                        );
                                    }
                                    // With dropout the values were weighted by p ⊙ keep, and the
                                    // probabilities' gradient is keep ⊙ (g vᵀ).
                                    let keep = keep.map(|k| &k[(bi * h + head) * t * s..][..t * s]);
                                    let weights = match keep {
                                        Some(keep) => {
                                            for ((w, &p), &k) in kept.iter_mut().zip(&p).zip(keep) {
                                                *w = p * k;
                                            }
                                            &kept
                                        }
                                        None => &p,
                                    };
                                    let wm = MatRef::row_major(weights, t, s);
                                    matmul_into(dv, d, wm.t(), gm, true, 1)?;
                                    matmul_into(&mut ds, s, gm, vm.t(), false, 1)?;
                                    if let Some(keep) = keep {
                                        scale_row(&mut ds, keep);
                                    }
                                    // dz = p ⊙ (dp − Σ_j dp_j p_j), with Σ_j dp_j p_j = g_i · o_i.
                                    for (i, (ds, p)) in
                                        ds.chunks_exact_mut(s).zip(p.chunks_exact(s)).enumerate()
                                    {
                                        let at = (bi * t + i) * row_len + head * d;
                                        let dot: f32 = g[at..at + d]
                                            .iter()
                                            .zip(&o[at..at + d])
                                            .map(|(g, o)| g * o)
                                            .sum();
                                        for (ds, &p) in ds.iter_mut().zip(p) {
                                            *ds = scale * p * (*ds - dot);
                                        }
                                    }
                                    let dsm = MatRef::row_major(&ds, t, s);
                                    matmul_into(dq, d, dsm, km, false, 1)?;
                                    matmul_into(dk, d, dsm.t(), qm, true, 1)?;
                                }
                                Ok::<(), candle_core::Error>(())
                            })
                    })
                })
            })
        })?;
        let n = grads.len();
        Ok((CpuStorage::F32(grads), Shape::from(n)))
    }
}

/// Runs `f` on the dropout mask's data, if there is one.
fn with_keep<R>(
    keep: Option<&Tensor>,
    f: impl FnOnce(Option<&[f32]>) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    match keep {
        Some(keep) => with_f32(keep, "attention dropout mask", |k| f(Some(k))),
        None => f(None),
    }
}

/// `row ⊙= factors`.
fn scale_row(row: &mut [f32], factors: &[f32]) {
    for (x, &f) in row.iter_mut().zip(factors) {
        *x *= f;
    }
}
