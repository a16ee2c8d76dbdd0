//! AdamW's element-wise update in place, in three passes over memory that is already there instead
//! of a dozen allocating tensor ops: `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, then
//! `p ← p·(1 − lr·λ) − (lr/(1−β₁ᵗ)) · m / (√v/√(1−β₂ᵗ) + ε)`. Same arithmetic, in the same order, as
//! the composition in `optim::adamw`, which it is tested against.
//!
//! Writing into the parameter and moment buffers (candle's in-place ops) allocates nothing: a
//! version that returned new tensors page-faulted three parameter-sized buffers in every step and
//! copied the parameter back with `Var::set`.

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Tensor};
use rayon::prelude::*;

use super::fused;
use super::op_io::{equal_f32_inputs, f32_inputs};
use super::storage::contiguous_f32_mut;

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

/// One AdamW step on f32 CPU tensors, writing `p`, `m` and `v` in place. Returns `false` (and
/// changes nothing) when the in-place path does not apply: other dtypes or devices, shapes that
/// differ, or non-contiguous tensors. `p`, `m`, `v` and `g` must not share storage (candle's
/// in-place ops refuse aliased operands).
pub fn adamw_step(
    p: &Tensor,
    m: &Tensor,
    v: &Tensor,
    g: &Tensor,
    step: AdamWStep,
) -> crate::Result<bool> {
    let all = [p, m, v, g];
    if !fused(&all)
        || all
            .iter()
            .any(|t| t.dims() != g.dims() || !t.is_contiguous())
    {
        return Ok(false);
    }
    m.inplace_op2(
        g,
        &Moment {
            decay: step.beta1,
            squared: false,
        },
    )?;
    v.inplace_op2(
        g,
        &Moment {
            decay: step.beta2,
            squared: true,
        },
    )?;
    p.inplace_op3(m, v, &Update(step))?;
    Ok(true)
}

/// `x ← β x + (1 − β) g` (or `g²`).
struct Moment {
    decay: f64,
    squared: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment-in-place"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let x = contiguous_f32_mut(s1, l1, "moment")?;
        let [g] = f32_inputs(self.name(), [(s2, l2, "gradient")])?;
        if x.len() != g.len() {
            candle_core::bail!(
                "adamw: moment {:?} vs gradient {:?}",
                l1.shape(),
                l2.shape()
            );
        }
        let (b, c) = (self.decay as f32, (1.0 - self.decay) as f32);
        let squared = self.squared;
        x.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .for_each(|(x, g)| {
                for (x, &g) in x.iter_mut().zip(g) {
                    let g = if squared { g * g } else { g };
                    *x = *x * b + g * c;
                }
            });
        Ok(())
    }
}

struct Update(AdamWStep);

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "adamw-update-in-place"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<()> {
        let p = contiguous_f32_mut(s1, l1, "parameter")?;
        let [m, v] = equal_f32_inputs(
            self.name(),
            [(s2, l2, "first moment"), (s3, l3, "second moment")],
        )?;
        if m.len() != p.len() {
            candle_core::bail!("adamw: parameter {:?} vs moments", l1.shape());
        }
        let s = self.0;
        let (decay, bias2, eps) = (s.decay_factor as f32, s.bias2_sqrt as f32, s.eps as f32);
        let step_size = (s.lr / s.bias1) as f32;
        p.par_chunks_mut(CHUNK)
            .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
            .for_each(|(p, (m, v))| {
                for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
                    let denom = v.sqrt() / bias2 + eps;
                    *p = *p * decay - (m / denom) * step_size;
                }
            });
        Ok(())
    }
}
