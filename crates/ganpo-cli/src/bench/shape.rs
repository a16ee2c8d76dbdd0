//! The model shapes `ganpo bench` can initialize at random, so that no download is needed: a tiny
//! Llama for tests and SmolLM2-135M's exact shape for the performance targets.

use std::path::Path;
use std::str::FromStr;

use ganpo::ganpo::DiscriminatorConfig;
use ganpo::model::ModelConfig;
use ganpo::{Error, Result};
use serde_json::{Value, json};

/// A randomly initialized model shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchShape {
    /// A 2-layer, d 64 Llama (tests and smoke runs).
    Tiny,
    /// `HuggingFaceTB/SmolLM2-135M-Instruct`: 30 layers, d 576, 9 query / 3 key-value heads,
    /// MLP 1536, vocabulary 49,152, tied embeddings (134.5 M parameters).
    Smollm2_135m,
    /// SmolLM2-360M's shape: 32 layers, d 960, 15 query / 5 key-value heads, MLP 2560, tied.
    Smollm2_360m,
}

impl FromStr for BenchShape {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "tiny" => Ok(BenchShape::Tiny),
            "smollm2-135m" => Ok(BenchShape::Smollm2_135m),
            "smollm2-360m" => Ok(BenchShape::Smollm2_360m),
            other => Err(Error::Config(format!(
                "unknown bench shape `{other}`; use `tiny`, `smollm2-135m` or `smollm2-360m`"
            ))),
        }
    }
}

impl BenchShape {
    /// The name accepted by `--shape`.
    pub fn name(self) -> &'static str {
        match self {
            BenchShape::Tiny => "tiny",
            BenchShape::Smollm2_135m => "smollm2-135m",
            BenchShape::Smollm2_360m => "smollm2-360m",
        }
    }

    /// The shape as a Hugging Face `config.json` (SmolLM2's is the published one, minus fields
    /// that do not affect the computation).
    pub fn config_json(self) -> Value {
        match self {
            BenchShape::Tiny => json!({
                "model_type": "llama",
                "vocab_size": 512,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "head_dim": 16,
                "hidden_act": "silu",
                "max_position_embeddings": 512,
                "rms_norm_eps": 1e-5,
                "rope_theta": 10000.0,
                "tie_word_embeddings": true,
                "bos_token_id": 1,
                "eos_token_id": 2,
                "pad_token_id": 2
            }),
            BenchShape::Smollm2_135m => smollm2_json(576, 1536, 30, 9, 3),
            BenchShape::Smollm2_360m => smollm2_json(960, 2560, 32, 15, 5),
        }
    }

    /// The resolved model configuration.
    pub fn model_config(self) -> Result<ModelConfig> {
        ModelConfig::from_json(Path::new(self.name()), &self.config_json())
    }

    /// The discriminators benchmarked with this shape: the authors' network for SmolLM2 (ganpo's
    /// default), a small one for the tiny model.
    pub fn discriminator(self) -> DiscriminatorConfig {
        match self {
            BenchShape::Tiny => DiscriminatorConfig {
                width: 32,
                depth: 1,
                heads: 4,
                dropout: 0.1,
                max_positions: 512,
            },
            BenchShape::Smollm2_135m | BenchShape::Smollm2_360m => DiscriminatorConfig::default(),
        }
    }
}

/// A SmolLM2 `config.json` (Llama architecture, tied embeddings, 49,152-token vocabulary, heads of
/// 64) with the given width, MLP width, depth and query / key-value heads.
fn smollm2_json(hidden: usize, mlp: usize, layers: usize, heads: usize, kv_heads: usize) -> Value {
    json!({
        "model_type": "llama",
        "vocab_size": 49152,
        "hidden_size": hidden,
        "intermediate_size": mlp,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": 64,
        "hidden_act": "silu",
        "attention_bias": false,
        "mlp_bias": false,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0,
        "rope_scaling": null,
        "tie_word_embeddings": true,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2
    })
}
