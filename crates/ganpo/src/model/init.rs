//! Fresh, randomly initialized weights for a config, as transformers initializes them (normal with
//! standard deviation `initializer_range` for projections and embeddings, zero biases, norms at
//! their identity: 1, or 0 for Gemma's `(1 + w)` norms). Used to train models from scratch (the
//! built-in demo) and to benchmark a model's shape without downloading it.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::config::{Architecture, ModelConfig};
use crate::Result;

/// Every parameter name of the decoder with its shape, in Hugging Face naming.
pub fn parameter_shapes(config: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (d, f, v) = (
        config.hidden_size,
        config.intermediate_size,
        config.vocab_size,
    );
    let q = config.num_attention_heads * config.head_dim;
    let kv = config.num_key_value_heads * config.head_dim;
    let mut shapes = vec![("model.embed_tokens.weight".to_string(), vec![v, d])];
    for i in 0..config.num_hidden_layers {
        let p = format!("model.layers.{i}");
        let mut layer = vec![
            (format!("{p}.input_layernorm.weight"), vec![d]),
            (format!("{p}.post_attention_layernorm.weight"), vec![d]),
            (format!("{p}.self_attn.q_proj.weight"), vec![q, d]),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv, d]),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv, d]),
            (format!("{p}.self_attn.o_proj.weight"), vec![d, q]),
            (format!("{p}.mlp.gate_proj.weight"), vec![f, d]),
            (format!("{p}.mlp.up_proj.weight"), vec![f, d]),
            (format!("{p}.mlp.down_proj.weight"), vec![d, f]),
        ];
        if config.qkv_bias {
            layer.push((format!("{p}.self_attn.q_proj.bias"), vec![q]));
            layer.push((format!("{p}.self_attn.k_proj.bias"), vec![kv]));
            layer.push((format!("{p}.self_attn.v_proj.bias"), vec![kv]));
        }
        if config.o_bias {
            layer.push((format!("{p}.self_attn.o_proj.bias"), vec![d]));
        }
        if config.mlp_bias {
            layer.push((format!("{p}.mlp.gate_proj.bias"), vec![f]));
            layer.push((format!("{p}.mlp.up_proj.bias"), vec![f]));
            layer.push((format!("{p}.mlp.down_proj.bias"), vec![d]));
        }
        if config.architecture == Architecture::Gemma2 {
            layer.push((format!("{p}.pre_feedforward_layernorm.weight"), vec![d]));
            layer.push((format!("{p}.post_feedforward_layernorm.weight"), vec![d]));
        }
        shapes.extend(layer);
    }
    shapes.push(("model.norm.weight".to_string(), vec![d]));
    if !config.tie_word_embeddings {
        shapes.push(("lm_head.weight".to_string(), vec![v, d]));
    }
    shapes
}

/// Random weights for `config` from `seed`, with standard deviation `std` (transformers' default
/// `initializer_range` is 0.02).
pub fn random_weights(
    config: &ModelConfig,
    std: f64,
    seed: u64,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, std as f32)
        .map_err(|e| crate::Error::Config(format!("initializer std {std}: {e}")))?;
    let norm_value = if config.architecture.norm_adds_one() {
        0.0
    } else {
        1.0
    };
    let mut out = HashMap::new();
    for (name, shape) in parameter_shapes(config) {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = if name.ends_with("norm.weight") {
            vec![norm_value; n]
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            (0..n).map(|_| normal.sample(&mut rng)).collect()
        };
        out.insert(
            name,
            Tensor::from_vec(data, shape, device)?.to_dtype(DType::F32)?,
        );
    }
    Ok(out)
}
