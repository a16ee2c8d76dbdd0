//! The MLP half of a pre-norm decoder layer as one op with a hand-written backward:
//! `y = x + (act(n W_gateᵀ) ⊙ n W_upᵀ) W_downᵀ` with `n = RMSNorm(x)`, or with Gemma-2's
//! post-norm `y = x + RMSNorm_post(m)` of the MLP output `m`.
//!
//! Built from the per-op kernels (RMSNorm, two linear layers, the gated down projection, the
//! residual add), the block is five graph nodes, and candle's backward gives each of their inputs
//! a zero-filled gradient buffer and adds into it: ~15 M floats written and re-read per layer at
//! SmolLM2-135M's shape and 2,048 tokens. Here the only candle input is `x`; the backward writes
//! each gradient once, accumulates the residual gradient in place, and hands the weights'
//! gradients to a [`ParamGrads`] store. The forward keeps the gate and up projections (as the
//! gated down projection did) and recomputes the normalized input and the activation.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::Activation;
use super::gemm::{MatRef, matmul, matmul_new};
use super::glu::{glu_grads_into, glu_values};
use super::op_io::f32_inputs;
use super::param_grads::ParamGrads;
use super::rms_norm::{effective_weight, normalize, normalize_backward};
use super::storage::{with_f32, with_f32_all};
use super::{buffer, fused, gated_down, linear, rms_norm};
use crate::{Error, Result};

/// The block's weights (Hugging Face layouts, no biases) and settings.
#[derive(Debug, Clone, Copy)]
pub struct MlpBlock<'a> {
    /// The post-attention RMSNorm's `[d]` weight.
    pub norm: &'a Tensor,
    /// `gate_proj.weight` `[hidden, d]`.
    pub gate: &'a Tensor,
    /// `up_proj.weight` `[hidden, d]`.
    pub up: &'a Tensor,
    /// `down_proj.weight` `[d, hidden]`.
    pub down: &'a Tensor,
    /// RMSNorm's ε.
    pub eps: f64,
    /// Gemma's `(1 + w)` norm scaling.
    pub add_one: bool,
    /// The gate's activation.
    pub act: Activation,
    /// Gemma-2's `post_feedforward_layernorm` `[d]` weight (same ε and scaling as `norm`): the
    /// MLP output is normalized before the residual add.
    pub post_norm: Option<&'a Tensor>,
}

impl MlpBlock<'_> {
    /// Norm, gate, up, down, then the post-norm when present.
    fn weights(&self) -> Vec<&Tensor> {
        let mut all = vec![self.norm, self.gate, self.up, self.down];
        all.extend(self.post_norm);
        all
    }
}

/// `x + MLP(RMSNorm(x))` for `x` `[..., d]`. Differentiable in `x` and in the weights; the
/// weights' gradients go to `grads` (drained by [`crate::model::CausalLm::backward`]). Runs the
/// composition of per-op kernels ([`mlp_block_composed`]) off the CPU, for dtypes other than
/// f32, and when a weight is a variable but there is no `grads` to receive its gradient.
pub fn mlp_block(x: &Tensor, block: &MlpBlock<'_>, grads: Option<&ParamGrads>) -> Result<Tensor> {
    let (hidden, d) = block.gate.dims2()?;
    let fits = d > 0
        && hidden > 0
        && x.dims().last() == Some(&d)
        && block.norm.dims() == [d]
        && block.up.dims() == [hidden, d]
        && block.down.dims() == [d, hidden]
        && block.post_norm.is_none_or(|p| p.dims() == [d]);
    if !fits {
        return Err(Error::Training(format!(
            "mlp block: input {:?}, norm {:?}, gate {:?}, up {:?}, down {:?}",
            x.dims(),
            block.norm.dims(),
            block.gate.dims(),
            block.up.dims(),
            block.down.dims()
        )));
    }
    let weights = block.weights();
    let trained: Vec<bool> = weights.iter().map(|w| w.is_variable()).collect();
    let any_trained = trained.iter().any(|&t| t);
    let mut all = vec![x];
    all.extend(&weights);
    if !fused(&all) || (any_trained && grads.is_none()) {
        return mlp_block_composed(x, block);
    }
    let x = x.contiguous()?;
    let save = x.track_op() || any_trained;
    // The op's backward runs only for a tracked input: an untracked one (frozen embeddings
    // feeding trained layers) becomes a variable whose own gradient is never read.
    let x = match any_trained && !x.track_op() {
        true => candle_core::Var::from_tensor(&x)?.into_inner(),
        false => x,
    };
    let op = MlpOp {
        weights: weights
            .iter()
            .map(|w| w.contiguous())
            .collect::<candle_core::Result<_>>()?,
        trained,
        dims: [x.elem_count() / d, d, hidden],
        eps: block.eps as f32,
        add_one: block.add_one,
        act: block.act,
        grads: grads.cloned(),
        save,
        tape: Mutex::new(None),
    };
    Ok(x.apply_op1(op)?)
}

/// The same function from the per-op kernels (each with its own backward), in any dtype.
pub fn mlp_block_composed(x: &Tensor, block: &MlpBlock<'_>) -> Result<Tensor> {
    let n = rms_norm(x, block.norm, block.eps, block.add_one)?;
    let gate = linear(&n, block.gate, None)?;
    let up = linear(&n, block.up, None)?;
    let m = gated_down(&gate, &up, block.down, block.act)?;
    match block.post_norm {
        None => Ok((x + m)?),
        Some(post) => Ok((x + rms_norm(&m, post, block.eps, block.add_one)?)?),
    }
}

/// The op: weights (norm, gate, up, down, post-norm), which of them are trained, and the
/// forward's record.
struct MlpOp {
    weights: Vec<Tensor>,
    trained: Vec<bool>,
    /// `[rows, d, hidden]`.
    dims: [usize; 3],
    eps: f32,
    add_one: bool,
    act: Activation,
    grads: Option<ParamGrads>,
    save: bool,
    /// Shared so that the graph can be back-propagated more than once, as candle allows.
    tape: Mutex<Option<Arc<Tape>>>,
}

/// The gate and up projections of the forward, and the MLP output under a post-norm.
struct Tape {
    gate: Vec<f32>,
    up: Vec<f32>,
    m: Option<Vec<f32>>,
}

impl CustomOp1 for MlpOp {
    fn name(&self) -> &'static str {
        "fused-mlp-block"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let [x] = f32_inputs(self.name(), [(s, l, "input")])?;
        let [rows, d, hidden] = self.dims;
        if x.len() != rows * d {
            candle_core::bail!("mlp block: {} input values for [{rows}, {d}]", x.len())
        }
        let (out, tape) = with_f32_all(&self.weights, "mlp block weight", |w| {
            let n = normalize(x, &effective_weight(w[0], self.add_one), self.eps);
            let nm = MatRef::row_major(&n, rows, d);
            let gate = matmul_new(nm, MatRef::row_major(w[1], hidden, d).t())?;
            let up = matmul_new(nm, MatRef::row_major(w[2], hidden, d).t())?;
            drop(n);
            let h = glu_values(&gate, &up, self.act);
            let hm = MatRef::row_major(&h, rows, hidden);
            let wd = MatRef::row_major(w[3], d, hidden).t();
            let (out, m) = match w.get(4) {
                None => {
                    let mut out = buffer::copy_par(x);
                    matmul(&mut out, hm, wd, true)?;
                    (out, None)
                }
                Some(post) => {
                    let m = matmul_new(hm, wd)?;
                    let mut out = normalize(&m, &effective_weight(post, self.add_one), self.eps);
                    add_into(&mut out, x);
                    (out, Some(m))
                }
            };
            Ok((out, Tape { gate, up, m }))
        })?;
        if self.save {
            *self.tape.lock().map_err(|_| poisoned())? = Some(Arc::new(tape));
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let Some(tape) = self.tape.lock().map_err(|_| poisoned())?.clone() else {
            candle_core::bail!("mlp block: a backward pass the forward kept nothing for")
        };
        let grad = grad.contiguous()?;
        let (dx, dws) = with_f32(x, "mlp block input", |x| {
            with_f32(&grad, "mlp block output gradient", |g| {
                with_f32_all(&self.weights, "mlp block weight", |w| {
                    self.backward(x, g, w, &tape)
                })
            })
        })?;
        if let Some(grads) = &self.grads {
            grads.push_flat(&self.weights, dws)?;
        }
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

/// `∂L/∂x` and the trained weights' gradients (norm, gate, up, down, post-norm).
type Grads = (Vec<f32>, Vec<Option<Vec<f32>>>);

/// `out += x`, element by element over rayon (the residual add after a post-norm).
fn add_into(out: &mut [f32], x: &[f32]) {
    out.par_chunks_mut(1 << 14)
        .zip(x.par_chunks(1 << 14))
        .for_each(|(o, x)| o.iter_mut().zip(x).for_each(|(o, &x)| *o += x));
}

impl MlpOp {
    fn backward(
        &self,
        x: &[f32],
        g: &[f32],
        w: &[&[f32]],
        tape: &Tape,
    ) -> candle_core::Result<Grads> {
        let [rows, d, hidden] = self.dims;
        if x.len() != rows * d || g.len() != rows * d || tape.gate.len() != rows * hidden {
            candle_core::bail!("mlp block: backward buffers do not fit [{rows}, {d}, {hidden}]")
        }
        let n_len = rows * hidden;
        // Under a post-norm, the MLP output's gradient goes through the norm's backward first.
        let (dm, d_post) = match (&tape.m, w.get(4)) {
            (Some(m), Some(post)) => {
                let mut dm = vec![0f32; rows * d];
                let post = effective_weight(post, self.add_one);
                let d_post = normalize_backward(m, &post, g, self.eps, &mut dm);
                (Some(dm), self.trained[4].then_some(d_post))
            }
            _ => (None, None),
        };
        let gm = MatRef::row_major(dm.as_deref().unwrap_or(g), rows, d);
        let wd = MatRef::row_major(w[3], d, hidden);
        // ∂L/∂W_down = gᵀ h, with h recomputed.
        let d_down = match self.trained[3] {
            true => {
                let h = glu_values(&tape.gate, &tape.up, self.act);
                Some(matmul_new(gm.t(), MatRef::row_major(&h, rows, hidden))?)
            }
            false => None,
        };
        // ∂L/∂h = g W_down, then through the activation into the gate and up projections.
        let dh = matmul_new(gm, wd)?;
        let mut packed = buffer::uninit(2 * n_len);
        glu_grads_into(&tape.gate, &tape.up, &dh, self.act, &mut packed);
        drop(dh);
        // SAFETY: `glu_grads_into` writes all `2 · rows · hidden` slots.
        let packed = unsafe { buffer::assume_init(packed) };
        let (dgate, dup) = packed.split_at(n_len);
        let (dgm, dum) = (
            MatRef::row_major(dgate, rows, hidden),
            MatRef::row_major(dup, rows, hidden),
        );
        let norm_w = effective_weight(w[0], self.add_one);
        // ∂L/∂W = dᵀ n for the gate and up projections, with n recomputed.
        let n = (self.trained[1] || self.trained[2]).then(|| normalize(x, &norm_w, self.eps));
        let weight_grad = |dm: MatRef<'_>, trained: bool| match (&n, trained) {
            (Some(n), true) => matmul_new(dm.t(), MatRef::row_major(n, rows, d)).map(Some),
            _ => Ok(None),
        };
        let d_gate = weight_grad(dgm, self.trained[1])?;
        let d_up = weight_grad(dum, self.trained[2])?;
        drop(n);
        // ∂L/∂n = dgate W_gate + dup W_up.
        let mut dn = matmul_new(dgm, MatRef::row_major(w[1], hidden, d))?;
        matmul(&mut dn, dum, MatRef::row_major(w[2], hidden, d), true)?;
        drop(packed);
        // ∂L/∂x = g (the residual) + the norm's backward of ∂L/∂n.
        let mut dx = buffer::copy_par(g);
        let d_norm = normalize_backward(x, &norm_w, &dn, self.eps, &mut dx);
        let mut grads = vec![self.trained[0].then_some(d_norm), d_gate, d_up, d_down];
        if w.len() > 4 {
            grads.push(d_post);
        }
        Ok((dx, grads))
    }
}

fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg("mlp block: a thread panicked holding its state".into())
}
