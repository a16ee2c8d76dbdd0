//! Fused CPU kernels with their own backward pass for the hot paths of a training step: linear
//! layers as one product, RMSNorm, rotary embeddings, grouped-query attention (and its masked
//! softmax alone, for soft-capped scores), the gated MLP activation (alone, or with the down
//! projection so the activation is recomputed in backward), the label log-prob of full logits,
//! and the LM head fused with it (chunked, so full logits are never kept); for the GANPO
//! discriminators, LayerNorm, exact GELU, dropout's masked scaling and linear layers with frozen
//! weights (input gradient only). Also AdamW's update, a gradient's sum of squares, and
//! gradient checkpointing's recomputing op ([`checkpointed`]).
//!
//! Whole blocks run as one op each: a decoder layer's attention half and MLP half
//! ([`attention_block`], [`mlp_block`], weight gradients to a [`ParamGrads`] store) and the
//! discriminator's encoder stack ([`encoder`]).
//!
//! Built from candle primitives, each of these is a chain of 4–10 element-wise ops, every one of
//! which allocates a full-size output and keeps it for the backward pass. Here each is one
//! [`candle_core::CustomOp1`]/`2`/`3` whose forward makes one pass over its input and whose backward
//! is another custom op. Every public function falls back to the differentiable composition off
//! the CPU or for dtypes other than f32 (f64 gradient checks run through the composition), and each
//! kernel is checked against that composition (values and gradients) in `tests/kernels.rs`.

mod activation;
mod adamw;
mod attention;
mod attention_block;
pub(crate) mod buffer;
pub mod encoder;
mod frozen_linear;
mod gelu;
mod gemm;
mod glu;
mod glu_down;
mod label_logprob;
mod layer_norm;
mod linear;
mod lm_head;
mod masked_scale;
mod mlp_block;
mod op_io;
mod param_grads;
mod project_heads;
mod recompute;
mod rms_norm;
mod rope;
pub(crate) mod simd;
mod skinny;
mod softmax;
pub(crate) mod storage;
mod sum_squares;
pub(crate) mod verf;
pub(crate) mod vexp;

pub use activation::Activation;
pub use adamw::{AdamWStep, adamw_step};
pub use attention::{attention, attention_composed, grouped_attention_composed, packed_attention};
pub use attention_block::{AttentionBlock, attention_block, attention_block_composed};
pub use frozen_linear::{frozen_linear, frozen_linear_composed};
pub use gelu::{gelu_erf, gelu_erf_composed, gelu_erf_masked};
pub use glu::{gated_activation, gated_activation_composed};
pub use glu_down::{gated_down, gated_down_composed};
pub use label_logprob::label_logprobs;
pub use layer_norm::{layer_norm, layer_norm_composed};
pub use linear::{linear, linear_composed, linear_residual};
pub use lm_head::{HeadLogps, lm_head_logps, lm_head_logps_composed};
pub use masked_scale::{
    masked_scale, masked_scale_composed, residual_masked_scale, residual_masked_scale_composed,
};
pub use mlp_block::{MlpBlock, mlp_block, mlp_block_composed};
pub use param_grads::ParamGrads;
pub use project_heads::{RopeTables, project_heads, project_heads_composed};
pub use recompute::{RecomputedGrads, checkpointed, detach_all};
pub use rms_norm::{rms_norm, rms_norm_composed};
pub use rope::{rope, rope_composed};
pub use softmax::{masked_softmax, masked_softmax_composed};
pub use sum_squares::sum_of_squares;

use candle_core::{DType, Tensor};

/// Whether the fused kernels apply: f32 tensors on the CPU.
fn fused(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// Rows handed to one rayon task: large enough to amortize scheduling, small enough to balance.
fn rows_per_task(rows: usize, row_len: usize) -> usize {
    let target = (1 << 14) / row_len.max(1); // ~16k elements per task
    target.clamp(1, rows.max(1))
}
