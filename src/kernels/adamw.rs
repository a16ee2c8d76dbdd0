//! AdamW's element-wise update in two passes instead of a dozen allocating tensor ops:
//! `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²` (one op, both moments packed in one buffer), then
//! `p ← p·(1 − lr·λ) − (lr/(1−β₁ᵗ)) · m / (√v/√(1−β₂ᵗ) + ε)` (a second op). Same arithmetic, in the
//! same order, as the composition in `optim::adamw`, which it is tested against.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::fused;
use super::storage::contiguous_f32;

/// Elements per rayon task.
const CHUNK: usize = 1 << 15;

/// The hyper-parameters of one AdamW step, bias corrections included.
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Learning rate.
    pub lr: f64,
    /// `1 − β₁ᵗ`.
    pub bias1: f64,
    /// `√(1 − β₂ᵗ)`.
    pub bias2_sqrt: f64,
    /// `1 − lr·λ` (1 when the parameter is not decayed).
    pub decay_factor: f64,
}

/// One fused AdamW step on f32 CPU tensors: returns `(p', m', v')`, or `None` when the fused path
/// does not apply (other dtypes or devices), leaving the caller to compose it.
pub fn adamw_step(
    p: &Tensor,
    m: &Tensor,
    v: &Tensor,
    g: &Tensor,
    step: AdamWStep,
) -> crate::Result<Option<(Tensor, Tensor, Tensor)>> {
    if !fused(&[p, m, v, g]) || p.dims() != g.dims() || m.dims() != g.dims() || v.dims() != g.dims()
    {
        return Ok(None);
    }
    let n = g.elem_count();
    let moments =
        m.contiguous()?
            .apply_op3_no_bwd(&v.contiguous()?, &g.contiguous()?, &Moments(step))?;
    let m_new = moments.narrow(0, 0, n)?.reshape(g.shape())?;
    let v_new = moments.narrow(0, n, n)?.reshape(g.shape())?;
    let p_new = p
        .detach()
        .contiguous()?
        .apply_op3_no_bwd(&m_new, &v_new, &Update(step))?;
    Ok(Some((p_new, m_new, v_new)))
}

struct Moments(AdamWStep);

impl CustomOp3 for Moments {
    fn name(&self) -> &'static str {
        "fused-adamw-moments"
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
        let m = contiguous_f32(s1, l1, "first moment")?;
        let v = contiguous_f32(s2, l2, "second moment")?;
        let g = contiguous_f32(s3, l3, "gradient")?;
        let n = g.len();
        let (b1, b2) = (self.0.beta1 as f32, self.0.beta2 as f32);
        let (c1, c2) = ((1.0 - self.0.beta1) as f32, (1.0 - self.0.beta2) as f32);
        let mut out = vec![0f32; 2 * n];
        let (mo, vo) = out.split_at_mut(n);
        mo.par_chunks_mut(CHUNK)
            .zip(vo.par_chunks_mut(CHUNK))
            .zip(
                m.par_chunks(CHUNK)
                    .zip(v.par_chunks(CHUNK))
                    .zip(g.par_chunks(CHUNK)),
            )
            .for_each(|((mo, vo), ((m, v), g))| {
                for i in 0..g.len() {
                    mo[i] = m[i] * b1 + g[i] * c1;
                    vo[i] = v[i] * b2 + g[i] * g[i] * c2;
                }
            });
        Ok((CpuStorage::F32(out), Shape::from(2 * n)))
    }
}

struct Update(AdamWStep);

impl CustomOp3 for Update {
    fn name(&self) -> &'static str {
        "fused-adamw-update"
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
        let p = contiguous_f32(s1, l1, "parameter")?;
        let m = contiguous_f32(s2, l2, "first moment")?;
        let v = contiguous_f32(s3, l3, "second moment")?;
        let s = self.0;
        let (decay, bias2, eps) = (s.decay_factor as f32, s.bias2_sqrt as f32, s.eps as f32);
        let step_size = (s.lr / s.bias1) as f32;
        let mut out = vec![0f32; p.len()];
        out.par_chunks_mut(CHUNK)
            .zip(
                p.par_chunks(CHUNK)
                    .zip(m.par_chunks(CHUNK))
                    .zip(v.par_chunks(CHUNK)),
            )
            .for_each(|(o, ((p, m), v))| {
                for i in 0..p.len() {
                    let denom = v[i].sqrt() / bias2 + eps;
                    o[i] = p[i] * decay - (m[i] / denom) * step_size;
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
