//! Activation recomputation ("gradient checkpointing"), as transformers'
//! `gradient_checkpointing_enable()` / TRL's `gradient_checkpointing = true`: [`checkpointed`]
//! runs a computation (a decoder layer) on a detached copy of its input, so none of its
//! intermediates stay alive for the backward pass: the graph keeps only the input and output.
//!
//! The output is a custom op of the input whose backward recomputes the function from a fresh
//! variable holding the saved input, back-propagates the incoming gradient through that
//! recomputation, returns the input's gradient to the outer backward pass and adds the
//! function's parameter gradients to a [`RecomputedGrads`] store that the caller merges into the
//! pass's result (`crate::model::CausalLm::backward`). The function must be deterministic (decoder
//! layers have no randomness), so the recomputation reproduces the forward exactly.

use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, CudaStorage, CustomOp2, Layout, MetalStorage, Shape, Tensor, Var};

use crate::{Error, Result};

/// Parameter gradients produced by recomputed layers during one backward pass, waiting to be
/// merged into that pass's [`GradStore`].
#[derive(Debug, Clone, Default)]
pub struct RecomputedGrads(Arc<Mutex<Option<GradStore>>>);

impl RecomputedGrads {
    /// Adds `grads` to the store (summing with gradients already there).
    fn add(&self, grads: GradStore) -> candle_core::Result<()> {
        let mut guard = self
            .0
            .lock()
            .map_err(|_| candle_core::Error::Msg("recomputed-gradient store poisoned".into()))?;
        match guard.as_mut() {
            Some(store) => store.extend(grads),
            None => {
                *guard = Some(grads);
                Ok(())
            }
        }
    }

    /// Removes and returns everything stored (`None` when nothing was).
    pub fn take(&self) -> Result<Option<GradStore>> {
        let mut guard = self
            .0
            .lock()
            .map_err(|_| Error::Training("recomputed-gradient store poisoned".into()))?;
        Ok(guard.take())
    }
}

/// `grads` with every gradient detached from the graph that computed it.
///
/// candle stores a parameter's gradient as the result of tracked ops on the forward activations
/// (`xᵀ · ∂L/∂y` keeps `x`), so as long as a [`GradStore`] lives, so do the activations behind
/// it. Detaching lets them go as soon as the backward pass returns.
pub fn detach_all(mut grads: GradStore) -> GradStore {
    let ids: Vec<_> = grads.get_ids().copied().collect();
    for id in ids {
        if let Some(g) = grads.get_id(id).map(Tensor::detach) {
            grads.insert_id(id, g);
        }
    }
    grads
}

/// A function recomputed in backward (`x ↦ layer(x)`).
type Forward = Box<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

/// `forward(x)` with its activations recomputed during backward instead of kept (see the module
/// docs). `grads` receives the parameter gradients of `forward` when the backward pass reaches
/// it; `what` names the computation in errors (`"a decoder layer"`).
pub fn checkpointed(
    x: &Tensor,
    what: &'static str,
    grads: &RecomputedGrads,
    forward: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    let output = forward(&x.detach())?.detach();
    // The op must be tracked for its backward to run; an input that carries no graph (frozen
    // embeddings) becomes a variable whose own gradient is simply never read.
    let x = if x.track_op() {
        x.clone()
    } else {
        Var::from_tensor(x)?.into_inner()
    };
    let op = Recompute {
        forward: Box::new(forward),
        what,
        grads: grads.clone(),
    };
    Ok(x.apply_op2_arc(&output.contiguous()?, Arc::new(Box::new(op)))?)
}

/// The custom op `(x, forward(x) computed without a graph) ↦ forward(x)`.
struct Recompute {
    forward: Forward,
    what: &'static str,
    grads: RecomputedGrads,
}

/// The whole buffer of a contiguous tensor that starts at offset 0 and fills its storage: the
/// precomputed output, copied as the op's result.
fn whole<S: BackendStorage>(s: &S, l: &Layout) -> candle_core::Result<S> {
    if !l.is_contiguous() || l.start_offset() != 0 {
        candle_core::bail!("recomputed layer output must be contiguous from offset 0")
    }
    s.try_clone(l)
}

impl CustomOp2 for Recompute {
    fn name(&self) -> &'static str {
        "recomputed-layer"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        out: &CpuStorage,
        l: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((whole(out, l)?, l.shape().clone()))
    }

    fn cuda_fwd(
        &self,
        _: &CudaStorage,
        _: &Layout,
        out: &CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        Ok((whole(out, l)?, l.shape().clone()))
    }

    fn metal_fwd(
        &self,
        _: &MetalStorage,
        _: &Layout,
        out: &MetalStorage,
        l: &Layout,
    ) -> candle_core::Result<(MetalStorage, Shape)> {
        Ok((whole(out, l)?, l.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad_out: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let input = Var::from_tensor(&x.detach())?;
        let out = (self.forward)(input.as_tensor())
            .map_err(|e| candle_core::Error::Msg(format!("recomputing {}: {e}", self.what)))?;
        let mut grads = (out * grad_out.detach())?.sum_all()?.backward()?;
        let grad_x = grads.remove(input.as_tensor()).map(|g| g.detach());
        // Detached, the gradients no longer hold the recomputed activations alive.
        self.grads.add(detach_all(grads))?;
        Ok((grad_x, None))
    }
}
