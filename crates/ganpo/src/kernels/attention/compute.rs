//! The attention op's forward and backward loops over heads, for either input layout ([`Heads`]).

use rayon::prelude::*;

use super::super::gemm::{MatRef, matmul_into};
use super::super::softmax::softmax_row;
use super::super::{simd, vexp};
use super::heads::Heads;

/// Query rows per forward task (and per backward block): enough for an efficient product, small
/// enough to balance, and the granularity at which masked keys are skipped.
const QUERY_BLOCK: usize = 64;

/// Mask values at or below this are never attended: `exp(z + m − max)` underflows to exactly 0 for
/// any finite score `z`, so such keys contribute nothing forward or backward and are skipped.
const SKIPPED: f32 = -1.0e20;

/// The keys that the query rows of `mask` (row-major, `s` keys per row) may attend: one past the
/// last key any row sees, so a causal mask skips the keys after the block's last query. All `s`
/// when some row sees no key at all (its softmax spreads evenly over every key).
fn key_extent(mask: &[f32], s: usize) -> usize {
    let mut extent = 0;
    for row in mask.chunks_exact(s) {
        match row.iter().rposition(|&m| m > SKIPPED) {
            Some(last) => extent = extent.max(last + 1),
            None => return s,
        }
    }
    extent
}

/// Shapes of one attention call.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dims {
    pub batch: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub q_len: usize,
    pub k_len: usize,
    pub head_dim: usize,
}

/// The constant inputs: additive mask `[batch, 1, q_len, k_len]`, optional dropout factors
/// `[batch, heads, q_len, k_len]`, and the score scale.
#[derive(Clone, Copy)]
pub(super) struct Constants<'a> {
    pub mask: &'a [f32],
    pub keep: Option<&'a [f32]>,
    pub scale: f32,
}

/// What the forward keeps for the backward.
pub(super) enum Saved {
    /// Per query row and head, `[max, 1 / Σ exp(z − max)]` of the masked scaled scores `z`
    /// (`[batch, q_len, heads, 2]`): the backward rebuilds the probabilities from `q kᵀ`.
    Stats(Vec<f32>),
    /// The probabilities themselves (before dropout), `[batch, heads, q_len, k_len]`: no second
    /// score product in the backward, for `b · h · t · s` more floats kept.
    Probs(Vec<f32>),
}

/// The output `[batch, q_len, heads · head_dim]` and what the backward needs: the probabilities
/// when `keep_probs`, otherwise the row statistics.
pub(super) fn forward(
    q: Heads<'_>,
    k: Heads<'_>,
    v: Heads<'_>,
    dims: Dims,
    c: Constants<'_>,
    keep_probs: bool,
) -> candle_core::Result<(Vec<f32>, Saved)> {
    let Dims {
        batch: b,
        heads: h,
        kv_heads: kv,
        q_len: t,
        k_len: s,
        head_dim: d,
    } = dims;
    let (group, row_len) = (h / kv, h * d);
    let mut out = vec![0f32; b * t * row_len];
    let mut stats = vec![0f32; b * t * h * 2];
    let mut probs = vec![0f32; if keep_probs { b * h * t * s } else { 0 }];
    // Each (batch, query block) task gets its rows of every head's probabilities (none when they
    // are not kept).
    let blocks = t.div_ceil(QUERY_BLOCK).max(1);
    let mut slabs: Vec<Vec<Vec<&mut [f32]>>> = (0..b)
        .map(|_| (0..blocks).map(|_| Vec::new()).collect())
        .collect();
    for (i, slab) in probs.chunks_mut(t * s).enumerate() {
        for (block, rows) in slab.chunks_mut(QUERY_BLOCK * s).enumerate() {
            slabs[i / h][block].push(rows);
        }
    }
    out.par_chunks_mut(t * row_len)
        .zip(stats.par_chunks_mut(t * h * 2))
        .zip(slabs.into_par_iter())
        .enumerate()
        .try_for_each(|(bi, ((out, stats), slabs))| {
            out.par_chunks_mut(QUERY_BLOCK * row_len)
                .zip(stats.par_chunks_mut(QUERY_BLOCK * h * 2))
                .zip(slabs.into_par_iter())
                .enumerate()
                .try_for_each(|(block, ((out, stats), mut slabs))| {
                    let (r0, m) = (block * QUERY_BLOCK, out.len() / row_len);
                    // Only the first `e` keys can get attention from these rows; the rest of each
                    // probability row stays 0.
                    let e = key_extent(&c.mask[(bi * t + r0) * s..(bi * t + r0 + m) * s], s);
                    let mut scratch = vec![0f32; m * s];
                    for head in 0..h {
                        let qm = q.rows(bi, head, r0, m);
                        let km = k.rows(bi, head / group, 0, e);
                        let vm = v.rows(bi, head / group, 0, e);
                        let keep = c.keep.map(|keep| {
                            let at = ((bi * h + head) * t + r0) * s;
                            &keep[at..at + m * s]
                        });
                        let row_stats = |p: &mut [f32], stats: &mut [f32]| {
                            matmul_into(p, s, qm, km.t(), false, 1)?;
                            simd::vectorized(
                                #[inline(always)]
                                || {
                                    for (i, row) in p.chunks_exact_mut(s).enumerate() {
                                        let mask_at = (bi * t + r0 + i) * s;
                                        let mask = &c.mask[mask_at..mask_at + e];
                                        let (max, inv) = softmax_row(&mut row[..e], mask, c.scale);
                                        stats[(i * h + head) * 2] = max;
                                        stats[(i * h + head) * 2 + 1] = inv;
                                    }
                                },
                            );
                            Ok::<(), candle_core::Error>(())
                        };
                        // The values are weighted by the probabilities times the dropout factors.
                        let weights: &[f32] = match slabs.get_mut(head) {
                            Some(p) => {
                                row_stats(p, stats)?;
                                match keep {
                                    Some(keep) => {
                                        product_into(&mut scratch, p, keep);
                                        &scratch
                                    }
                                    None => p,
                                }
                            }
                            None => {
                                row_stats(&mut scratch, stats)?;
                                if let Some(keep) = keep {
                                    scale_row(&mut scratch, keep);
                                }
                                &scratch
                            }
                        };
                        let pm = MatRef {
                            cols: e,
                            ..MatRef::row_major(weights, m, s)
                        };
                        matmul_into(&mut out[head * d..], row_len, pm, vm, false, 1)?;
                    }
                    Ok::<(), candle_core::Error>(())
                })
        })?;
    let saved = match keep_probs {
        true => Saved::Probs(probs),
        false => Saved::Stats(stats),
    };
    Ok((out, saved))
}

/// The gradients of queries, keys and values, in the separate layout and concatenated flat in
/// that order, from the output gradient `g` and output `o` (`[batch, q_len, heads · head_dim]`).
pub(super) fn backward(
    (q, k, v): (Heads<'_>, Heads<'_>, Heads<'_>),
    (g, o): (&[f32], &[f32]),
    dims: Dims,
    c: Constants<'_>,
    saved: &Saved,
) -> candle_core::Result<Vec<f32>> {
    let Dims {
        batch: b,
        heads: h,
        kv_heads: kv,
        q_len: t,
        k_len: s,
        head_dim: d,
    } = dims;
    let (group, row_len, scale) = (h / kv, h * d, c.scale);
    let (q_size, kv_size) = (b * h * t * d, b * kv * s * d);
    let mut grads = vec![0f32; q_size + 2 * kv_size];
    let (dq, dkv) = grads.split_at_mut(q_size);
    let (dk, dv) = dkv.split_at_mut(kv_size);
    // One task per (batch, key/value head): it owns that head's key and value gradients and the
    // query gradients of its group. It walks the query rows in blocks, each over the keys its
    // rows may attend (as the forward).
    let blocks: Vec<(usize, usize)> = (0..t)
        .step_by(QUERY_BLOCK)
        .map(|r0| (r0, QUERY_BLOCK.min(t - r0)))
        .collect();
    dq.par_chunks_mut(group * t * d)
        .zip(dk.par_chunks_mut(s * d).zip(dv.par_chunks_mut(s * d)))
        .enumerate()
        .try_for_each(|(task, (dq, (dk, dv)))| {
            let (bi, kv_head) = (task / kv, task % kv);
            let extents: Vec<usize> = blocks
                .iter()
                .map(|&(r0, m)| key_extent(&c.mask[(bi * t + r0) * s..(bi * t + r0 + m) * s], s))
                .collect();
            let block_len = QUERY_BLOCK.min(t);
            let (mut scratch, mut ds) = (vec![0f32; block_len * s], vec![0f32; block_len * s]);
            let mut kept = vec![0f32; if c.keep.is_some() { block_len * s } else { 0 }];
            for (j, dq) in dq.chunks_exact_mut(t * d).enumerate() {
                let head = kv_head * group + j;
                for (&(r0, m), &e) in blocks.iter().zip(&extents) {
                    let qm = q.rows(bi, head, r0, m);
                    let km = k.rows(bi, kv_head, 0, e);
                    let vm = v.rows(bi, kv_head, 0, e);
                    // This block's rows of the head's columns of the output gradient.
                    let gm = MatRef {
                        data: &g[(bi * t + r0) * row_len + head * d..],
                        rows: m,
                        cols: d,
                        row_stride: row_len,
                        col_stride: 1,
                    };
                    // The block's probabilities: `m × e`, rows `s` apart.
                    let p: &[f32] = match saved {
                        Saved::Probs(probs) => &probs[((bi * h + head) * t + r0) * s..][..m * s],
                        Saved::Stats(stats) => {
                            matmul_into(&mut scratch, s, qm, km.t(), false, 1)?;
                            simd::vectorized(
                                #[inline(always)]
                                || {
                                    for (i, row) in scratch[..m * s].chunks_exact_mut(s).enumerate()
                                    {
                                        let at = ((bi * t + r0 + i) * h + head) * 2;
                                        let mask_at = (bi * t + r0 + i) * s;
                                        let (max, inv) = (stats[at], stats[at + 1]);
                                        let mask = &c.mask[mask_at..mask_at + e];
                                        probs_row(&mut row[..e], mask, scale, max, inv);
                                    }
                                },
                            );
                            &scratch[..m * s]
                        }
                    };
                    // With dropout the values were weighted by p ⊙ keep, and the probabilities'
                    // gradient is keep ⊙ (g vᵀ).
                    let keep = c
                        .keep
                        .map(|k| &k[((bi * h + head) * t + r0) * s..][..m * s]);
                    let weights = match keep {
                        Some(keep) => {
                            product_into(&mut kept[..m * s], p, keep);
                            &kept[..m * s]
                        }
                        None => p,
                    };
                    let wm = MatRef {
                        cols: e,
                        ..MatRef::row_major(weights, m, s)
                    };
                    matmul_into(dv, d, wm.t(), gm, true, 1)?;
                    matmul_into(&mut ds, s, gm, vm.t(), false, 1)?;
                    if let Some(keep) = keep {
                        scale_row(&mut ds[..m * s], keep);
                    }
                    // dz = p ⊙ (dp − Σ_j dp_j p_j), with Σ_j dp_j p_j = g_i · o_i.
                    simd::vectorized(
                        #[inline(always)]
                        || {
                            for (i, (ds, p)) in ds[..m * s]
                                .chunks_exact_mut(s)
                                .zip(p.chunks_exact(s))
                                .enumerate()
                            {
                                let at = (bi * t + r0 + i) * row_len + head * d;
                                let dot: f32 = g[at..at + d]
                                    .iter()
                                    .zip(&o[at..at + d])
                                    .map(|(g, o)| g * o)
                                    .sum();
                                for (ds, &p) in ds[..e].iter_mut().zip(&p[..e]) {
                                    *ds = scale * p * (*ds - dot);
                                }
                            }
                        },
                    );
                    let dsm = MatRef {
                        cols: e,
                        ..MatRef::row_major(&ds, m, s)
                    };
                    matmul_into(&mut dq[r0 * d..], d, dsm, km, false, 1)?;
                    matmul_into(dk, d, dsm.t(), qm, true, 1)?;
                }
            }
            Ok::<(), candle_core::Error>(())
        })?;
    Ok(grads)
}

/// Rebuilds a row of probabilities in place from its scores and saved statistics.
#[inline(always)]
fn probs_row(row: &mut [f32], mask: &[f32], scale: f32, max: f32, inv: f32) {
    for (z, &m) in row.iter_mut().zip(mask) {
        *z = vexp::exp(*z * scale + m - max) * inv;
    }
}

/// `row ⊙= factors`, vectorized.
fn scale_row(row: &mut [f32], factors: &[f32]) {
    simd::vectorized(
        #[inline(always)]
        || {
            for (x, &f) in row.iter_mut().zip(factors) {
                *x *= f;
            }
        },
    )
}

/// `out = a ⊙ b`, vectorized.
fn product_into(out: &mut [f32], a: &[f32], b: &[f32]) {
    simd::vectorized(
        #[inline(always)]
        || {
            for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                *o = a * b;
            }
        },
    )
}
