//! Gradient checkpointing of a decoder layer: the layer as the function that
//! [`crate::kernels::checkpointed`] recomputes in backward (see that module for how).

use candle_core::Tensor;

use super::attention::AttentionMasks;
use super::decoder::DecoderLayer;
use super::rotary::Rotary;
use crate::Result;
use crate::kernels::{ParamGrads, RecomputedGrads, checkpointed};

/// `layer(x)` with its activations recomputed during backward instead of kept. `grads` receives
/// the layer's parameter gradients when the backward pass reaches it (its fused blocks' weights
/// go to `block_grads`, as in a plain forward).
pub(crate) fn checkpointed_layer(
    layer: &DecoderLayer,
    x: &Tensor,
    rotary: &Rotary,
    masks: &AttentionMasks,
    grads: &RecomputedGrads,
    block_grads: Option<&ParamGrads>,
) -> Result<Tensor> {
    let (layer, rotary, masks) = (layer.clone(), rotary.clone(), masks.clone());
    let block_grads = block_grads.cloned();
    checkpointed(x, "a decoder layer", grads, move |x| {
        layer.forward(x, &rotary, &masks, block_grads.as_ref())
    })
}
