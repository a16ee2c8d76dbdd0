//! The attention op and its backward as candle custom ops: three inputs (separate q, k, v) or one
//! (the packed output of a fused projection).

use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, Shape, Tensor};

use super::super::op_io::{self, f32_inputs, unpack};
use super::super::storage::with_f32;
use super::compute::{self, Constants, Dims, Saved};
use super::heads::Heads;
use crate::Result;

/// How the op's queries, keys and values arrive.
#[derive(Debug, Clone, Copy)]
pub(super) enum Layout {
    /// Three inputs, `[batch, heads, q_len, dim]` and `[batch, kv_heads, k_len, dim]` twice.
    Separate,
    /// One input `[batch, len, 3 · heads · dim]`: q, k, v side by side in each row.
    Packed {
        /// Query (and key/value) heads.
        heads: usize,
    },
}

/// What the forward kept for the backward (see [`Saved`]).
type Kept = Arc<Saved>;

/// What the forward should keep for the backward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Save {
    /// Nothing: no input needs a gradient.
    Nothing,
    /// The row statistics ([`Saved::Stats`]).
    Stats,
    /// The probabilities ([`Saved::Probs`]).
    Probs,
}

/// The three head views and the shapes of one call.
type Views<'a> = (Heads<'a>, Heads<'a>, Heads<'a>, Dims);

pub(super) struct Attention {
    layout: Layout,
    mask: Tensor,
    keep: Option<Tensor>,
    scale: f32,
    save: Save,
    kept: Mutex<Option<Kept>>,
}

impl Attention {
    pub fn new(
        layout: Layout,
        mask: &Tensor,
        keep: Option<&Tensor>,
        scale: f64,
        save: Save,
    ) -> Result<Self> {
        Ok(Attention {
            layout,
            mask: mask.contiguous()?,
            keep: keep.map(|keep| keep.detach().contiguous()).transpose()?,
            scale: scale as f32,
            save,
            kept: Mutex::new(None),
        })
    }

    fn run(&self, (q, k, v, dims): Views<'_>) -> candle_core::Result<(CpuStorage, Shape)> {
        let keep_probs = self.save == Save::Probs;
        let (out, saved) = with_constants(&self.mask, self.keep.as_ref(), self.scale, |c| {
            compute::forward(q, k, v, dims, c, keep_probs)
        })?;
        if self.save != Save::Nothing {
            *self.kept.lock().map_err(|_| poisoned())? = Some(Arc::new(saved));
        }
        let shape = Shape::from((dims.batch, dims.q_len, dims.heads * dims.head_dim));
        Ok((CpuStorage::F32(out), shape))
    }

    fn grad_op(&self, out: &Tensor, grad: &Tensor) -> candle_core::Result<AttentionGrad> {
        let kept = self.kept.lock().map_err(|_| poisoned())?.clone();
        let Some(kept) = kept else {
            candle_core::bail!("fused attention: backward without what the forward kept")
        };
        Ok(AttentionGrad {
            layout: self.layout,
            grad: grad.contiguous()?,
            out: out.contiguous()?,
            mask: self.mask.clone(),
            keep: self.keep.clone(),
            scale: self.scale,
            kept,
        })
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &candle_core::Layout,
        s2: &CpuStorage,
        l2: &candle_core::Layout,
        s3: &CpuStorage,
        l3: &candle_core::Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.run(separate((s1, l1), (s2, l2), (s3, l3))?)
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let op = self.grad_op(out, grad)?;
        let grads = q.apply_op3_no_bwd(k, v, &op)?;
        let [dq, dk, dv] = unpack(
            CustomOp3::name(&op),
            &grads,
            [q.shape(), k.shape(), v.shape()],
        )?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "fused-packed-attention"
    }

    fn cpu_fwd(
        &self,
        s: &CpuStorage,
        l: &candle_core::Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.run(packed(s, l, self.layout)?)
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(qkv.apply_op1_no_bwd(&self.grad_op(out, grad)?)?))
    }
}

/// The gradients of queries, keys and values: flat and concatenated (separate layout), or packed
/// as the input was.
struct AttentionGrad {
    layout: Layout,
    grad: Tensor,
    out: Tensor,
    mask: Tensor,
    keep: Option<Tensor>,
    scale: f32,
    kept: Kept,
}

impl AttentionGrad {
    fn run(&self, (q, k, v, dims): Views<'_>) -> candle_core::Result<Vec<f32>> {
        with_f32(&self.grad, "attention output gradient", |g| {
            with_f32(&self.out, "attention output", |o| {
                with_constants(&self.mask, self.keep.as_ref(), self.scale, |c| {
                    compute::backward((q, k, v), (g, o), dims, c, &self.kept)
                })
            })
        })
    }
}

impl CustomOp3 for AttentionGrad {
    fn name(&self) -> &'static str {
        "fused-attention-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &candle_core::Layout,
        s2: &CpuStorage,
        l2: &candle_core::Layout,
        s3: &CpuStorage,
        l3: &candle_core::Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok(op_io::packed(self.run(separate(
            (s1, l1),
            (s2, l2),
            (s3, l3),
        )?)?))
    }
}

impl CustomOp1 for AttentionGrad {
    fn name(&self) -> &'static str {
        "fused-packed-attention-grad"
    }

    fn cpu_fwd(
        &self,
        s: &CpuStorage,
        l: &candle_core::Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let views = packed(s, l, self.layout)?;
        let dims = views.3;
        let grads = self.run(views)?;
        // [dq | dk | dv], each [batch, heads, len, dim], into rows of [batch, len, 3 · heads · dim].
        let out = super::raw::repack(&grads, dims);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// Head views of three separate inputs. Queries are contiguous; keys and values may also be the
/// first `len` slots of a contiguous `[batch, kv_heads, slots, dim]` cache (a narrowed view, read
/// in place).
fn separate<'a>(
    (s1, l1): (&'a CpuStorage, &candle_core::Layout),
    (s2, l2): (&'a CpuStorage, &candle_core::Layout),
    (s3, l3): (&'a CpuStorage, &candle_core::Layout),
) -> candle_core::Result<Views<'a>> {
    let (batch, heads, q_len, head_dim) = l1.shape().dims4()?;
    let (_, kv_heads, k_len, _) = l2.shape().dims4()?;
    let [q] = f32_inputs("fused attention", [(s1, l1, "queries")])?;
    let (k, k_slots) = cache_slots(s2, l2, "keys")?;
    let (v, v_slots) = cache_slots(s3, l3, "values")?;
    let view = |data, heads, len, slots| Heads {
        data,
        heads,
        len,
        dim: head_dim,
        slots,
        packed: None,
    };
    Ok((
        view(q, heads, q_len, q_len),
        view(k, kv_heads, k_len, k_slots),
        view(v, kv_heads, k_len, v_slots),
        Dims {
            batch,
            heads,
            kv_heads,
            q_len,
            k_len,
            head_dim,
        },
    ))
}

/// `slots` when `l` (`[batch, heads, len, dim]`) is the first `len` of `slots ≥ len` rows per head
/// of a contiguous `[batch, heads, slots, dim]` buffer (contiguous layouts included: `slots =
/// len`); `None` for any other layout.
pub(super) fn cache_slots_of(l: &candle_core::Layout) -> Option<usize> {
    let (&[_, heads, len, dim], &[s0, s1, s2, s3]) = (l.dims(), l.stride()) else {
        return None;
    };
    let slots = s1 / dim.max(1);
    (s3 == 1 && s2 == dim && s1 == slots * dim && s0 == heads * slots * dim && slots >= len)
        .then_some(slots)
}

/// A key or value input's data from its first element, and its rows per head: `len` when
/// contiguous; `slots` when it is the first `len` rows of each head of a contiguous
/// `[batch, heads, slots, dim]` buffer.
fn cache_slots<'a>(
    s: &'a CpuStorage,
    l: &candle_core::Layout,
    what: &'static str,
) -> candle_core::Result<(&'a [f32], usize)> {
    let (batch, heads, len, dim) = l.shape().dims4()?;
    if l.is_contiguous() {
        let [data] = f32_inputs("fused attention", [(s, l, what)])?;
        return Ok((data, len));
    }
    let CpuStorage::F32(all) = s else {
        candle_core::bail!("fused attention: {what} must be f32, not {:?}", s.dtype())
    };
    let start = l.start_offset();
    let view = cache_slots_of(l)
        .map(|slots| {
            (
                slots,
                start + ((batch * heads).saturating_sub(1) * slots + len) * dim,
            )
        })
        .filter(|&(_, end)| end <= all.len());
    let Some((slots, end)) = view else {
        candle_core::bail!(
            "fused attention: {what} must be contiguous or the first rows of a contiguous cache, not shape {:?} with strides {:?}",
            l.dims(),
            l.stride()
        )
    };
    Ok((&all[start..end], slots))
}

/// Head views of one packed `[batch, len, 3 · heads · dim]` input.
fn packed<'a>(
    s: &'a CpuStorage,
    l: &candle_core::Layout,
    layout: Layout,
) -> candle_core::Result<Views<'a>> {
    let Layout::Packed { heads } = layout else {
        candle_core::bail!("fused attention: one input needs the packed layout")
    };
    let (batch, len, row) = l.shape().dims3()?;
    let [data] = f32_inputs("fused attention", [(s, l, "q/k/v")])?;
    let head_dim = row / (3 * heads);
    let view = |part: usize| Heads {
        data,
        heads,
        len,
        dim: head_dim,
        slots: len,
        packed: Some((row, part * heads * head_dim)),
    };
    let dims = Dims {
        batch,
        heads,
        kv_heads: heads,
        q_len: len,
        k_len: len,
        head_dim,
    };
    Ok((view(0), view(1), view(2), dims))
}

/// Runs `f` on the mask's and dropout factors' data.
fn with_constants<R>(
    mask: &Tensor,
    keep: Option<&Tensor>,
    scale: f32,
    f: impl FnOnce(Constants<'_>) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    with_f32(mask, "attention mask", |mask| match keep {
        Some(keep) => with_f32(keep, "attention dropout mask", |keep| {
            f(Constants {
                mask,
                keep: Some(keep),
                scale,
            })
        }),
        None => f(Constants {
            mask,
            keep: None,
            scale,
        }),
    })
}

fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg("fused attention: a thread panicked holding the row statistics".into())
}
