//! The LM head and the label log-prob in one op, over row chunks, so the `[rows, vocab]` logits
//! are never materialized in full nor kept for the backward pass (which recomputes each chunk):
//! `logp[r] = l[r, label[r]] − logsumexp(l[r, :])` with `l = cap · tanh(h Wᵀ / cap)` (or `h Wᵀ`).
//! Only rows marked active are computed (completion tokens); the others get 0.
//!
//! Backward per chunk, with `δ[r, v] = g[r] · (1[v = label] − softmax(l[r])[v]) · ∂l/∂z`:
//! `∂L/∂h = δ W` and `∂L/∂W = δᵀ h`.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{MatRef, matmul};
use super::op_io::{f32_inputs, packed, unpack};
use super::{fused, simd, vexp};
use crate::Result;

/// Rows per chunk: the chunk's logits (`rows × vocab` f32) are the op's only large buffer.
const CHUNK_ROWS: usize = 256;

/// Per-row label log-probs and mean logits of an LM head.
#[derive(Debug, Clone)]
pub struct HeadLogps {
    /// `log softmax(l[r])[label[r]]` for active rows, 0 elsewhere, `[rows]` (differentiable).
    pub logps: Tensor,
    /// Mean of `l[r, :]` over the vocabulary for active rows, 0 elsewhere, `[rows]` (no gradient).
    pub mean_logits: Tensor,
}

/// Label log-probs of `hidden` (`[rows, d]`) under the head `weight` (`[vocab, d]`) with optional
/// final soft-capping, for the rows where `active` is set.
pub fn lm_head_logps(
    hidden: &Tensor,
    weight: &Tensor,
    labels: &[u32],
    active: &[bool],
    softcap: Option<f64>,
) -> Result<HeadLogps> {
    let (rows, _) = hidden.dims2()?;
    let (vocab, _) = weight.dims2()?;
    if labels.len() != rows || active.len() != rows {
        return Err(crate::Error::Config(format!(
            "lm_head_logps: {rows} rows, {} labels, {} activity flags",
            labels.len(),
            active.len()
        )));
    }
    if let Some(bad) = labels
        .iter()
        .zip(active)
        .find(|(l, a)| **a && **l as usize >= vocab)
    {
        return Err(crate::Error::Config(format!(
            "lm_head_logps: label {} outside the vocabulary of {vocab}",
            bad.0
        )));
    }
    if !fused(&[hidden, weight]) {
        return lm_head_logps_composed(hidden, weight, labels, active, softcap);
    }
    let op = LmHeadLogps {
        labels: Arc::new(labels.to_vec()),
        active: Arc::new((0..rows).filter(|&r| active[r]).collect()),
        softcap: softcap.map(|c| c as f32),
    };
    let name = op.name();
    let both = hidden.contiguous()?.apply_op2(&weight.contiguous()?, op)?;
    let per_row = Shape::from(rows);
    let [logps, mean_logits] = unpack(name, &both, [&per_row, &per_row])?;
    Ok(HeadLogps {
        logps,
        mean_logits: mean_logits.detach(),
    })
}

/// The same values through the full logits and differentiable candle primitives.
pub fn lm_head_logps_composed(
    hidden: &Tensor,
    weight: &Tensor,
    labels: &[u32],
    active: &[bool],
    softcap: Option<f64>,
) -> Result<HeadLogps> {
    let mut logits = hidden.matmul(&weight.t()?)?;
    if let Some(cap) = softcap {
        logits = ((logits / cap)?.tanh()? * cap)?;
    }
    let dtype = logits.dtype();
    let labels = Tensor::new(labels, hidden.device())?;
    let mask: Vec<f64> = active.iter().map(|&a| f64::from(u8::from(a))).collect();
    let mask = Tensor::new(mask, hidden.device())?.to_dtype(dtype)?;
    let lsm = candle_nn::ops::log_softmax(&logits, 1)?;
    let logps = lsm.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
    Ok(HeadLogps {
        logps: (logps * &mask)?,
        mean_logits: (logits.detach().mean(1)? * &mask)?,
    })
}

struct LmHeadLogps {
    labels: Arc<Vec<u32>>,
    /// Indices of the active rows, ascending.
    active: Arc<Vec<usize>>,
    softcap: Option<f32>,
}

/// Copies rows `idx` of the row-major `src` (`? × d`) into `dst` (`idx.len() × d`).
fn gather_rows(src: &[f32], d: usize, idx: &[usize], dst: &mut Vec<f32>) {
    dst.clear();
    for &r in idx {
        dst.extend_from_slice(&src[r * d..(r + 1) * d]);
    }
}

/// The chunk's logits `l = cap·tanh(h Wᵀ/cap)` into `logits` (`idx.len() × vocab`).
fn chunk_logits(
    h: &[f32],
    w: &[f32],
    (vocab, d): (usize, usize),
    softcap: Option<f32>,
    logits: &mut Vec<f32>,
) -> candle_core::Result<()> {
    let rows = h.len() / d;
    logits.resize(rows * vocab, 0.0);
    matmul(
        logits,
        MatRef::row_major(h, rows, d),
        MatRef::row_major(w, vocab, d).t(),
        false,
    )?;
    if let Some(cap) = softcap {
        logits
            .par_chunks_mut(vocab)
            .for_each(|row| row.iter_mut().for_each(|l| *l = cap * (*l / cap).tanh()));
    }
    Ok(())
}

/// `max + log Σ exp(x − max)` of one row, the sum accumulated in f64 (a sequential f32 sum over a
/// 49k-entry vocabulary drifts ~1e-4). Shared with `logps`' fused label log-prob.
pub(crate) fn row_logsumexp(row: &[f32]) -> f32 {
    simd::vectorized(
        #[inline(always)]
        || {
            let max = vexp::max(row);
            (f64::from(max) + vexp::sum_exp(row, max).ln()) as f32
        },
    )
}

/// `∂l/∂z` of the soft-cap `l = cap · tanh(z / cap)`, from the capped value: `1 − (l / cap)²`.
#[inline(always)]
fn softcap_slope(l: f32, cap: f32) -> f32 {
    1.0 - (l / cap) * (l / cap)
}

impl CustomOp2 for LmHeadLogps {
    fn name(&self) -> &'static str {
        "fused-lm-head-logps"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let [h, w] = f32_inputs(
            self.name(),
            [(s1, l1, "hidden states"), (s2, l2, "LM head weight")],
        )?;
        let (rows, d) = l1.shape().dims2()?;
        let (vocab, _) = l2.shape().dims2()?;
        let mut out = vec![0f32; 2 * rows];
        let (mut hbuf, mut logits) = (Vec::new(), Vec::new());
        for idx in self.active.chunks(CHUNK_ROWS) {
            gather_rows(h, d, idx, &mut hbuf);
            chunk_logits(&hbuf, w, (vocab, d), self.softcap, &mut logits)?;
            let stats: Vec<(f32, f32)> = logits
                .par_chunks(vocab)
                .zip(idx.par_iter())
                .map(|(row, &r)| {
                    let mean = row.iter().map(|&x| f64::from(x)).sum::<f64>() / vocab as f64;
                    (
                        row[self.labels[r] as usize] - row_logsumexp(row),
                        mean as f32,
                    )
                })
                .collect();
            for (&r, (logp, mean)) in idx.iter().zip(stats) {
                out[r] = logp;
                out[rows + r] = mean;
            }
        }
        Ok(packed(out))
    }

    fn bwd(
        &self,
        hidden: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let rows = hidden.dim(0)?;
        let g = grad.narrow(0, 0, rows)?.contiguous()?;
        let op = LmHeadLogpsGrad {
            labels: self.labels.clone(),
            active: self.active.clone(),
            softcap: self.softcap,
        };
        let grads = hidden.apply_op3_no_bwd(weight, &g.to_dtype(DType::F32)?, &op)?;
        let [dh, dw] = unpack(op.name(), &grads, [hidden.shape(), weight.shape()])?;
        Ok((Some(dh), Some(dw)))
    }
}

/// Backward of [`LmHeadLogps`]: `∂L/∂h` then `∂L/∂W`, packed in one buffer.
struct LmHeadLogpsGrad {
    labels: Arc<Vec<u32>>,
    active: Arc<Vec<usize>>,
    softcap: Option<f32>,
}

impl CustomOp3 for LmHeadLogpsGrad {
    fn name(&self) -> &'static str {
        "fused-lm-head-logps-grad"
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
        let [h, w, g] = f32_inputs(
            self.name(),
            [
                (s1, l1, "hidden states"),
                (s2, l2, "LM head weight"),
                (s3, l3, "log-prob gradient"),
            ],
        )?;
        let (rows, d) = l1.shape().dims2()?;
        let (vocab, _) = l2.shape().dims2()?;
        let mut out = vec![0f32; rows * d + vocab * d];
        let (dh, dw) = out.split_at_mut(rows * d);
        // Rows whose log-prob has no gradient (masked, or unused) contribute nothing.
        let live: Vec<usize> = self
            .active
            .iter()
            .copied()
            .filter(|&r| g[r] != 0.0)
            .collect();
        let (mut hbuf, mut logits, mut dh_chunk) = (Vec::new(), Vec::new(), Vec::new());
        for idx in live.chunks(CHUNK_ROWS) {
            gather_rows(h, d, idx, &mut hbuf);
            chunk_logits(&hbuf, w, (vocab, d), self.softcap, &mut logits)?;
            // The logits become δ in place.
            logits
                .par_chunks_mut(vocab)
                .zip(idx.par_iter())
                .for_each(|(row, &r)| {
                    let lse = row_logsumexp(row);
                    let gr = g[r];
                    let label = self.labels[r] as usize;
                    let label_slope = self
                        .softcap
                        .map_or(1.0, |cap| softcap_slope(row[label], cap));
                    simd::vectorized(
                        #[inline(always)]
                        || match self.softcap {
                            None => {
                                for l in row.iter_mut() {
                                    *l = -gr * vexp::exp(*l - lse);
                                }
                            }
                            Some(cap) => {
                                for l in row.iter_mut() {
                                    *l = -gr * vexp::exp(*l - lse) * softcap_slope(*l, cap);
                                }
                            }
                        },
                    );
                    row[label] += gr * label_slope;
                });
            let c = idx.len();
            dh_chunk.resize(c * d, 0.0);
            matmul(
                &mut dh_chunk,
                MatRef::row_major(&logits, c, vocab),
                MatRef::row_major(w, vocab, d),
                false,
            )?;
            for (i, &r) in idx.iter().enumerate() {
                dh[r * d..(r + 1) * d].copy_from_slice(&dh_chunk[i * d..(i + 1) * d]);
            }
            matmul(
                dw,
                MatRef::row_major(&logits, c, vocab).t(),
                MatRef::row_major(&hbuf, c, d),
                true,
            )?;
        }
        Ok(packed(out))
    }
}
