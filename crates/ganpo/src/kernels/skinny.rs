//! Products `x · Wᵀ` with few rows of `x`: decoding's shape (one row per sequence in the batch),
//! where the `gemm` crate spends most of its time packing `W` into its blocked layout (a copy as
//! large as the weights, made on every call) for a handful of rows.
//!
//! Here `W` (`[n, k]`, rows contiguous, as Hugging Face stores a linear layer) is read in place and
//! once: each task takes a block of `W`'s rows and, for every three of `x`'s rows, forms `4 × 3`
//! dot products at a time with 8-lane fused multiply-adds (AVX2 + FMA; twelve accumulators, enough
//! to cover the FMA latency), the block staying in the L1 cache while `x` (at most [`MAX_ROWS`]
//! rows) stays in L2. With one row of `x` the blocks are eight rows of `W`, a pure stream at near
//! memory bandwidth; at batch 32 it does `gemm`'s multiply-adds without the packing.
//!
//! Each output is one dot product with a fixed order of operations (8 lane sums over `k`, a fixed
//! horizontal sum, then the scalar tail), whatever the block it is computed in, so a row's result
//! does not depend on the other rows of the batch.

/// The most rows of `x` that take this path; more rows amortize `gemm`'s packing.
pub(crate) const MAX_ROWS: usize = 64;

/// The shortest rows (`k`) that take this path with many rows of `x`: a model's hidden size.
/// Shorter dot products over many rows (training's 64-query attention blocks, a tiny model's
/// layers) stay with `gemm` (measured: `ganpo bench --shape tiny` was 5–15 % slower with them here).
const MIN_DEPTH: usize = 256;

/// At most this many rows of `x` take the path from [`MIN_DEPTH_FEW`] up: decoding's single
/// query row per attention head (`q kᵀ`, `k` = the head dimension), where `gemm`'s per-call set-up
/// dominates (batch-1 decoding of SmolLM2 ran at 38 tokens/s with them on `gemm`, 61 here).
const FEW_ROWS: usize = 4;

/// The shortest rows for [`FEW_ROWS`] rows of `x`.
const MIN_DEPTH_FEW: usize = 32;

/// Products below this many multiply-adds run on the calling thread: waking another worker
/// costs more than it saves. (At 2²⁰, batch-1 decoding of SmolLM2 ran its 576 × 576 and
/// 576 × 1536 products on one thread: 38 instead of ~60 tokens/s.)
const PARALLEL_MIN_WORK: usize = 1 << 16;

/// The most rows of `W` per parallel task.
const MAX_ROWS_PER_TASK: usize = 64;

/// Rows of `W` per task: at most [`MAX_ROWS_PER_TASK`], and few enough that `threads` workers get
/// about four tasks each (a key or value projection has only 192 rows at SmolLM2's shape, which
/// 64-row tasks would split 2 : 1 over two threads), in whole blocks of four.
fn rows_per_task(n: usize, threads: usize) -> usize {
    (n.div_ceil(4 * threads.max(1)).div_ceil(4) * 4).clamp(4, MAX_ROWS_PER_TASK)
}

/// Whether `dst (+)= a · b` can take this path: `a` (`[m, k]`) with contiguous rows, `b` the
/// transpose of a matrix with contiguous rows, few rows, and a CPU with AVX2 and FMA.
pub(crate) fn applies(m: usize, k: usize, a_col_stride: usize, b_row_stride: usize) -> bool {
    (1..=MAX_ROWS).contains(&m)
        && (k >= MIN_DEPTH || (m <= FEW_ROWS && k >= MIN_DEPTH_FEW))
        && a_col_stride == 1
        && b_row_stride == 1
        && has_fma()
}

#[cfg(target_arch = "x86_64")]
fn has_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_fma() -> bool {
    false
}

/// One product `dst (+)= x · wᵀ`: `x` `[m, k]` (row `i` at `x + i · x_stride`), `w` `[n, k]` (row
/// `j` at `w + j · w_stride`), `dst` `[m, n]` with row stride `dst_stride`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operands {
    pub dst: *mut f32,
    pub dst_stride: usize,
    pub x: *const f32,
    pub x_stride: usize,
    pub w: *const f32,
    pub w_stride: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// Add to `dst` instead of overwriting it.
    pub accumulate: bool,
}

// SAFETY: tasks only read `x` and `w`, and each writes its own columns of `dst`; see `product`.
unsafe impl Send for Operands {}
// SAFETY: as above.
unsafe impl Sync for Operands {}

/// Computes the product, over `threads` rayon tasks at a time (1: on the calling thread).
///
/// # Safety
///
/// [`applies`] must hold; `x` and `w` must be valid for the reads described (rows of `k`
/// elements), and `dst` valid for writes (and reads, when `accumulate`) of rows `i < m` of `n`
/// elements at `i · dst_stride`, not overlapping `x` or `w`.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn product(op: Operands, threads: usize) {
    use rayon::prelude::*;
    let per_task = rows_per_task(op.n, threads);
    // SAFETY: the caller's contract; each task writes columns `start..start + per_task` only.
    let task = |start: usize| unsafe { avx2::columns(op, start..(start + per_task).min(op.n)) };
    let starts = (0..op.n).step_by(per_task);
    if threads > 1 && op.n > per_task && op.m * op.k * op.n >= PARALLEL_MIN_WORK {
        starts.collect::<Vec<_>>().into_par_iter().for_each(task);
    } else {
        starts.for_each(task);
    }
}

/// Never called: [`applies`] is false off x86-64.
///
/// # Safety
///
/// None needed; it does nothing.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) unsafe fn product(_: Operands, _: usize) {}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::Operands;

    /// Rows of `w` per block.
    const WB: usize = 4;
    /// Rows of `x` per block.
    const XB: usize = 3;

    /// Columns `cols` of the product.
    ///
    /// # Safety
    ///
    /// AVX2 and FMA are available, and [`super::product`]'s pointer contract holds.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn columns(op: Operands, cols: Range<usize>) {
        // One row of `x` is a pure stream of `w`: eight rows of `w` at a time keep more loads in
        // flight. More rows of `x` reuse each loaded block of `w` for `XB` rows.
        let wide = if op.m == 1 { 8 } else { WB };
        let mut j = cols.start;
        while j < cols.end {
            let left = cols.end - j;
            let step = if left >= wide {
                wide
            } else if left >= WB {
                WB
            } else {
                1
            };
            // SAFETY: the caller's contract; rows `j..j + step` of `w` are below `cols.end ≤ n`.
            unsafe {
                match step {
                    8 => rows::<8>(op, j),
                    WB => rows::<WB>(op, j),
                    _ => rows::<1>(op, j),
                }
            }
            j += step;
        }
    }

    /// Columns `j..j + W` of the product, `XB` rows of `x` at a time (then 2, then 1).
    ///
    /// # Safety
    ///
    /// As [`columns`], with rows `j..j + W` of `w` in bounds.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows<const W: usize>(op: Operands, j: usize) {
        let mut i = 0;
        while i < op.m {
            // SAFETY: rows `i..i + X ≤ m` of `x`, `j..j + W` of `w`; outputs `(i + b, j + a)` are
            // in `dst`'s rows and columns.
            unsafe {
                i += match op.m - i {
                    left if left >= XB => store(op, i, j, block::<W, XB>(op, i, j)),
                    2 => store(op, i, j, block::<W, 2>(op, i, j)),
                    _ => store(op, i, j, block::<W, 1>(op, i, j)),
                };
            }
        }
    }

    /// Writes (or adds) `sums[a][b]` at row `i + b`, column `j + a` of `dst`; returns `X`, the
    /// rows of `x` done.
    ///
    /// # Safety
    ///
    /// Those elements are valid for writes (and reads when `accumulate`).
    #[inline(always)]
    unsafe fn store<const W: usize, const X: usize>(
        op: Operands,
        i: usize,
        j: usize,
        sums: [[f32; X]; W],
    ) -> usize {
        for (a, row) in sums.iter().enumerate() {
            for (b, &s) in row.iter().enumerate() {
                // SAFETY: the caller's contract.
                unsafe {
                    let out = op.dst.add((i + b) * op.dst_stride + j + a);
                    *out = if op.accumulate { *out + s } else { s };
                }
            }
        }
        X
    }

    /// The `W × X` dot products of rows `j..j + W` of `w` with rows `i..i + X` of `x`.
    ///
    /// # Safety
    ///
    /// AVX2 and FMA are available; the rows are in bounds, each `k` elements long.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block<const W: usize, const X: usize>(
        op: Operands,
        i: usize,
        j: usize,
    ) -> [[f32; X]; W] {
        let (x, x_stride, w, w_stride, k) = (op.x, op.x_stride, op.w, op.w_stride, op.k);
        let mut acc = [[_mm256_setzero_ps(); X]; W];
        let xs: [*const f32; X] = std::array::from_fn(|b| unsafe { x.add((i + b) * x_stride) });
        let ws: [*const f32; W] = std::array::from_fn(|a| unsafe { w.add((j + a) * w_stride) });
        let full = k - k % 8;
        let mut p = 0;
        while p < full {
            // SAFETY: `p + 8 ≤ k`.
            let xv: [__m256; X] = std::array::from_fn(|b| unsafe { _mm256_loadu_ps(xs[b].add(p)) });
            for a in 0..W {
                let wv = unsafe { _mm256_loadu_ps(ws[a].add(p)) };
                for b in 0..X {
                    acc[a][b] = _mm256_fmadd_ps(wv, xv[b], acc[a][b]);
                }
            }
            p += 8;
        }
        let mut out = [[0.0f32; X]; W];
        for a in 0..W {
            for b in 0..X {
                let mut s = hsum(acc[a][b]);
                for q in full..k {
                    // SAFETY: `q < k`.
                    s = unsafe { (*ws[a].add(q)).mul_add(*xs[b].add(q), s) };
                }
                out[a][b] = s;
            }
        }
        out
    }

    /// `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`: one fixed order for every block.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn hsum(v: __m256) -> f32 {
        let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
        let one = _mm_add_ss(pair, _mm_shuffle_ps::<0b01>(pair, pair));
        _mm_cvtss_f32(one)
    }
}
