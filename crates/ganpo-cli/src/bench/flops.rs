//! Analytic FLOP counts of one training step, the numerator of `ganpo bench`'s achieved GFLOP/s.
//!
//! Convention (also in `docs/performance.md`, and ported as is to `tools/bench/torch_step.py`):
//! a multiply-add is 2 FLOPs and only matrix products count (norms, activations, softmax, rotary
//! embeddings, losses and the optimizer are left out). Per token of a sequence of `T` positions:
//!
//! - decoder forward: `2 · (q, k, v, o, gate, up, down weights) + 4 · T · heads · head_dim` per layer
//!   (scores and weighted values over all `T` keys: both implementations compute the full `T × T`
//!   products and mask them, so the masked half is counted) `+ 2 · d · V` for the LM head;
//! - discriminator forward: `2 · d · w` (input projection) `+ (24 w² + 4 T w)` per encoder layer
//!   (attention projections `4 w²`, FFN `2 · 4 w²`, scores and values) `+ 2 (w² + w) / T` for the
//!   per-sequence head;
//! - backward = 2 × forward (gradients of activations and of weights), except through the frozen
//!   discriminators of the generator term: 1 × (activations only; their weights are constants).

use ganpo::ganpo::DiscriminatorConfig;
use ganpo::model::ModelConfig;

/// FLOPs of one optimizer step, by the part of the step that spends them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepFlops {
    /// Reference forward (no backward).
    pub reference_forward: f64,
    /// Policy forward.
    pub policy_forward: f64,
    /// Policy backward (2 × forward).
    pub policy_backward: f64,
    /// GANPO: six discriminator scores of `B` sequences each, forward and backward, per
    /// discriminator update.
    pub discriminator_update: f64,
    /// GANPO: the generator term, D⁺ and D⁻ on the policy's latents, forward and backward into
    /// the latents.
    pub generator: f64,
}

impl StepFlops {
    /// All of them.
    pub fn total(&self) -> f64 {
        self.reference_forward
            + self.policy_forward
            + self.policy_backward
            + self.discriminator_update
            + self.generator
    }
}

/// Forward FLOPs per token of the decoder on sequences of `seq_len` positions.
pub fn decoder_forward_per_token(c: &ModelConfig, seq_len: usize) -> f64 {
    let (d, f) = (c.hidden_size as f64, c.intermediate_size as f64);
    let q = (c.num_attention_heads * c.head_dim) as f64;
    let kv = (c.num_key_value_heads * c.head_dim) as f64;
    let weights = d * q + 2.0 * d * kv + q * d + 3.0 * d * f;
    let attention = 4.0 * seq_len as f64 * q;
    c.num_hidden_layers as f64 * (2.0 * weights + attention) + 2.0 * d * c.vocab_size as f64
}

/// Forward FLOPs per token of one discriminator over `input_dim`-wide latents of `seq_len`
/// positions.
pub fn discriminator_forward_per_token(
    c: &DiscriminatorConfig,
    input_dim: usize,
    seq_len: usize,
) -> f64 {
    let w = c.width as f64;
    let t = seq_len as f64;
    let layer = 2.0 * (4.0 * w * w + 2.0 * w * c.ffn_width() as f64) + 4.0 * t * w;
    2.0 * input_dim as f64 * w + c.depth as f64 * layer + 2.0 * (w * w + w) / t
}

/// FLOPs of one step on `pairs` pairs of `seq_len`-token sequences (every position a real token):
/// DPO when `disc` is `None`, DPO + GANPO with `disc_steps` discriminator updates otherwise.
pub fn step_flops(
    model: &ModelConfig,
    disc: Option<(&DiscriminatorConfig, usize)>,
    pairs: usize,
    seq_len: usize,
) -> StepFlops {
    let tokens = (2 * pairs * seq_len) as f64;
    let forward = tokens * decoder_forward_per_token(model, seq_len);
    let (discriminator_update, generator) = match disc {
        None => (0.0, 0.0),
        Some((c, steps)) => {
            let per_token = discriminator_forward_per_token(c, model.hidden_size, seq_len);
            // Six scores of B sequences = 3 × the batch's 2B sequences; forward + 2 × backward.
            let update = steps as f64 * 3.0 * tokens * per_token * 3.0;
            // D⁺ on the B chosen and D⁻ on the B rejected sequences; forward + 1 × backward.
            (update, tokens * per_token * 2.0)
        }
    };
    StepFlops {
        reference_forward: forward,
        policy_forward: forward,
        policy_backward: 2.0 * forward,
        discriminator_update,
        generator,
    }
}
