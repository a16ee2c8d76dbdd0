//! Activation recomputation ("gradient checkpointing") per decoder layer, as transformers'
//! `gradient_checkpointing_enable()` / TRL's `gradient_checkpointing = true`.
//!
//! A checkpointed layer runs its forward on a detached copy of its input, so none of its
//! intermediates (norms, projections, attention scores, MLP activations) stay alive for the
//! backward pass: the graph keeps only the layer's input and output. The output is a custom op of
//! the input whose backward recomputes the layer from a fresh variable holding the saved input,
//! back-propagates the incoming gradient through that recomputation, returns the input's
//! gradient to the outer backward pass and adds the layer's parameter gradients to a
//! [`RecomputedGrads`] store that [`crate::model::CausalLm::backward`] merges into the result.
//! Decoder layers have no randomness, so the recomputation reproduces the forward exactly.

use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, CudaStorage, CustomOp2, Layout, MetalStorage, Shape, Tensor, Var};

use super::attention::AttentionMasks;
use super::decoder::DecoderLayer;
use super::rotary::Rotary;
use crate::kernels::ParamGrads;
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

/// `layer(x)` with its activations recomputed during backward instead of kept (see the module
/// docs). `grads` receives the layer's parameter gradients when the backward pass reaches it.
pub(crate) fn checkpointed_layer(
    layer: &DecoderLayer,
    x: &Tensor,
    rotary: &Rotary,
    masks: &AttentionMasks,
    grads: &RecomputedGrads,
    block_grads: Option<&ParamGrads>,
) -> Result<Tensor> {
    let output = layer
        .forward(&x.detach(), rotary, masks, block_grads)?
        .detach();
    // The op must be tracked for its backward to run; an input that carries no graph (frozen
    // embeddings) becomes a variable whose own gradient is simply never read.
    let x = if x.track_op() {
        x.clone()
    } else {
        Var::from_tensor(x)?.into_inner()
    };
    let op = Recompute {
        layer: layer.clone(),
        rotary: rotary.clone(),
        masks: masks.clone(),
        grads: grads.clone(),
        block_grads: block_grads.cloned(),
    };
    Ok(x.apply_op2_arc(&output.contiguous()?, Arc::new(Box::new(op)))?)
}

/// The custom op `(x, layer(x) computed without a graph) ↦ layer(x)`.
struct Recompute {
    layer: DecoderLayer,
    rotary: Rotary,
    masks: AttentionMasks,
    grads: RecomputedGrads,
    /// Where the recomputed layer's fused blocks put their weights' gradients.
    block_grads: Option<ParamGrads>,
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
        "recomputed-decoder-layer"
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
        let out = self
            .layer
            .forward(
                input.as_tensor(),
                &self.rotary,
                &self.masks,
                self.block_grads.as_ref(),
            )
            .map_err(|e| candle_core::Error::Msg(format!("recomputing a decoder layer: {e}")))?;
        let mut grads = (out * grad_out.detach())?.sum_all()?.backward()?;
        let grad_x = grads.remove(input.as_tensor()).map(|g| g.detach());
        // Detached, the gradients no longer hold the recomputed activations alive.
        self.grads.add(detach_all(grads))?;
        Ok((grad_x, None))
    }
}
