//! Reading and writing Hugging Face `config.json`: the raw fields ganpo reads, resolved into a
//! validated [`ModelConfig`] (defaults, aliases, rope scaling, token ids), and written back out
//! so that `transformers` loads what ganpo saves.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::config::{Activation, Architecture, AttentionKind, ModelConfig, RopeScaling};
use crate::{Error, Result};

/// The `hidden_act` / `hidden_activation` name of `config.json` as an [`Activation`].
fn parse_activation(name: &str) -> Option<Activation> {
    Some(match name {
        "silu" | "swish" => Activation::Silu,
        "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Activation::GeluTanh,
        "gelu" => Activation::Gelu,
        _ => return None,
    })
}

/// The name Hugging Face writes for `act`.
fn activation_hf_name(act: Activation) -> &'static str {
    match act {
        Activation::Silu => "silu",
        Activation::GeluTanh => "gelu_pytorch_tanh",
        Activation::Gelu => "gelu",
    }
}

/// `config.json` as Hugging Face writes it; only the fields ganpo reads.
#[derive(Debug, Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_scaling: Option<Value>,
    rope_parameters: Option<Value>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    hidden_act: Option<String>,
    hidden_activation: Option<String>,
    sliding_window: Option<usize>,
    use_sliding_window: Option<bool>,
    max_window_layers: Option<usize>,
    layer_types: Option<Vec<String>>,
    attn_logit_softcapping: Option<f64>,
    final_logit_softcapping: Option<f64>,
    query_pre_attn_scalar: Option<f64>,
    bos_token_id: Option<Value>,
    eos_token_id: Option<Value>,
    pad_token_id: Option<Value>,
}

fn cfg_err(path: &Path, message: impl Into<String>) -> Error {
    Error::model(path, message)
}

fn token_ids(value: &Option<Value>) -> Vec<u32> {
    match value {
        Some(Value::Number(n)) => n.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_u64())
            .map(|v| v as u32)
            .collect(),
        _ => Vec::new(),
    }
}

fn parse_rope_scaling(path: &Path, raw: &RawConfig) -> Result<(Option<f64>, Option<RopeScaling>)> {
    // transformers 5 folds `rope_theta` and `rope_scaling` into `rope_parameters`.
    let params = raw.rope_parameters.as_ref().or(raw.rope_scaling.as_ref());
    let theta_in_params = params
        .and_then(|p| p.get("rope_theta"))
        .and_then(Value::as_f64);
    let Some(params) = params.filter(|p| !p.is_null()) else {
        return Ok((None, None));
    };
    let kind = params
        .get("rope_type")
        .or_else(|| params.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let num = |key: &str| -> Result<f64> {
        params.get(key).and_then(Value::as_f64).ok_or_else(|| {
            cfg_err(
                path,
                format!("rope scaling `{kind}` needs a numeric `{key}`"),
            )
        })
    };
    let scaling = match kind {
        "default" => None,
        "linear" => Some(RopeScaling::Linear {
            factor: num("factor")?,
        }),
        "llama3" => Some(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        }),
        other => {
            return Err(cfg_err(
                path,
                format!(
                    "unsupported rope scaling type `{other}` (supported: default, linear, llama3)"
                ),
            ));
        }
    };
    Ok((theta_in_params, scaling))
}

impl ModelConfig {
    /// Reads and resolves a Hugging Face `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| cfg_err(path, format!("not valid JSON: {e}")))?;
        Self::from_json(path, &value)
    }

    /// Resolves a parsed `config.json`; `path` is only used in error messages.
    pub fn from_json(path: &Path, value: &Value) -> Result<Self> {
        let raw: RawConfig = serde_json::from_value(value.clone())
            .map_err(|e| cfg_err(path, format!("missing or invalid field: {e}")))?;
        let model_type = raw.model_type.as_deref().ok_or_else(|| {
            cfg_err(
                path,
                "no `model_type`; is this a Hugging Face model config?",
            )
        })?;
        let architecture = Architecture::from_model_type(model_type).ok_or_else(|| {
            cfg_err(
                path,
                format!(
                    "unknown architecture `{model_type}`; supported: llama, qwen2, mistral, gemma, gemma2"
                ),
            )
        })?;
        let gemma = architecture.norm_adds_one();
        let heads = raw.num_attention_heads;
        if heads == 0 || raw.hidden_size == 0 || raw.num_hidden_layers == 0 || raw.vocab_size == 0 {
            return Err(cfg_err(
                path,
                "hidden_size, vocab_size, num_hidden_layers and num_attention_heads must be positive",
            ));
        }
        // Tables and per-layer plans are built from these before the weights are checked, so an
        // absurd value must stop here rather than exhaust memory.
        for (key, value, max) in [
            ("num_hidden_layers", raw.num_hidden_layers, 1 << 12),
            (
                "max_position_embeddings",
                raw.max_position_embeddings.unwrap_or(0),
                1 << 22,
            ),
        ] {
            if value > max {
                return Err(cfg_err(
                    path,
                    format!(
                        "{key} = {value} is beyond any real model (at most {max}); fix config.json"
                    ),
                ));
            }
        }
        let kv_heads = raw.num_key_value_heads.unwrap_or(heads);
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(cfg_err(
                path,
                format!(
                    "num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv_heads})"
                ),
            ));
        }
        let head_dim = match raw.head_dim {
            Some(d) => d,
            None if raw.hidden_size.is_multiple_of(heads) => raw.hidden_size / heads,
            None => {
                return Err(cfg_err(
                    path,
                    "hidden_size is not divisible by num_attention_heads and no head_dim is given",
                ));
            }
        };
        if !head_dim.is_multiple_of(2) {
            return Err(cfg_err(
                path,
                format!("head_dim {head_dim} must be even for rotary embeddings"),
            ));
        }
        let act_name = match architecture {
            // Gemma reads `hidden_activation` first; transformers falls back to tanh-GELU.
            Architecture::Gemma | Architecture::Gemma2 => raw
                .hidden_activation
                .clone()
                .or(raw.hidden_act.clone())
                .unwrap_or_else(|| "gelu_pytorch_tanh".into()),
            _ => raw.hidden_act.clone().unwrap_or_else(|| "silu".into()),
        };
        let hidden_act = parse_activation(&act_name)
            .ok_or_else(|| cfg_err(path, format!("unsupported activation `{act_name}`")))?;
        let (theta_in_params, rope_scaling) = parse_rope_scaling(path, &raw)?;
        let rope_theta = raw.rope_theta.or(theta_in_params).unwrap_or(10_000.0);
        let n = raw.num_hidden_layers;
        let sliding_window = match architecture {
            Architecture::Qwen2 if raw.use_sliding_window != Some(true) => None,
            _ => raw.sliding_window,
        };
        let layer_types = match &raw.layer_types {
            Some(types) => {
                if types.len() != n {
                    return Err(cfg_err(
                        path,
                        format!("layer_types has {} entries for {n} layers", types.len()),
                    ));
                }
                types
                    .iter()
                    .map(|t| match t.as_str() {
                        "full_attention" => Ok(AttentionKind::Full),
                        "sliding_attention" => Ok(AttentionKind::Sliding),
                        other => Err(cfg_err(path, format!("unsupported layer type `{other}`"))),
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            // Gemma-2 alternates: even layers (0, 2, ...) slide, odd layers attend globally.
            None if architecture == Architecture::Gemma2 => (0..n)
                .map(|i| {
                    if (i + 1) % 2 == 1 {
                        AttentionKind::Sliding
                    } else {
                        AttentionKind::Full
                    }
                })
                .collect(),
            None if architecture == Architecture::Mistral => vec![AttentionKind::Sliding; n],
            // Qwen2 slides only from layer `max_window_layers` on.
            None if architecture == Architecture::Qwen2 => {
                let first = raw.max_window_layers.unwrap_or(n);
                (0..n)
                    .map(|i| {
                        if i >= first {
                            AttentionKind::Sliding
                        } else {
                            AttentionKind::Full
                        }
                    })
                    .collect()
            }
            None => vec![AttentionKind::Full; n],
        };
        let layer_types = if sliding_window.is_none() {
            vec![AttentionKind::Full; n]
        } else {
            layer_types
        };
        let attention_bias = raw.attention_bias.unwrap_or(false);
        let gemma2 = architecture == Architecture::Gemma2;
        Ok(ModelConfig {
            architecture,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: n,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(2048),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(gemma),
            qkv_bias: architecture == Architecture::Qwen2 || attention_bias,
            o_bias: architecture != Architecture::Qwen2 && attention_bias,
            mlp_bias: raw.mlp_bias.unwrap_or(false),
            hidden_act,
            sliding_window,
            layer_types,
            attn_logit_softcapping: if gemma2 {
                raw.attn_logit_softcapping
            } else {
                None
            },
            final_logit_softcapping: if gemma2 {
                raw.final_logit_softcapping
            } else {
                None
            },
            query_pre_attn_scalar: if gemma2 {
                raw.query_pre_attn_scalar.unwrap_or(head_dim as f64)
            } else {
                head_dim as f64
            },
            bos_token_id: token_ids(&raw.bos_token_id).first().copied(),
            eos_token_id: token_ids(&raw.eos_token_id),
            pad_token_id: token_ids(&raw.pad_token_id).first().copied(),
        })
    }

    /// The `config.json` Hugging Face would write for this model (f32 weights), so that
    /// `transformers` loads what ganpo saves, including models that came from GGUF files.
    pub fn to_hf_json(&self) -> Value {
        let a = self.architecture;
        let mut v = json!({
            "architectures": [a.hf_class()],
            "model_type": a.model_type(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "torch_dtype": "float32",
            "hidden_act": activation_hf_name(self.hidden_act),
        });
        let obj = v.as_object_mut().expect("json! object");
        match a {
            Architecture::Llama => {
                obj.insert("attention_bias".into(), json!(self.o_bias));
                obj.insert("mlp_bias".into(), json!(self.mlp_bias));
            }
            Architecture::Qwen2 => {
                obj.insert(
                    "use_sliding_window".into(),
                    json!(self.sliding_window.is_some()),
                );
                obj.insert("sliding_window".into(), json!(self.sliding_window));
            }
            Architecture::Mistral => {
                obj.insert("sliding_window".into(), json!(self.sliding_window));
            }
            Architecture::Gemma => {
                obj.insert(
                    "hidden_activation".into(),
                    json!(activation_hf_name(self.hidden_act)),
                );
            }
            Architecture::Gemma2 => {
                obj.insert(
                    "hidden_activation".into(),
                    json!(activation_hf_name(self.hidden_act)),
                );
                obj.insert("sliding_window".into(), json!(self.sliding_window));
                obj.insert(
                    "attn_logit_softcapping".into(),
                    json!(self.attn_logit_softcapping),
                );
                obj.insert(
                    "final_logit_softcapping".into(),
                    json!(self.final_logit_softcapping),
                );
                obj.insert(
                    "query_pre_attn_scalar".into(),
                    json!(self.query_pre_attn_scalar),
                );
            }
        }
        if let Some(scaling) = &self.rope_scaling {
            let s = match scaling {
                RopeScaling::Linear { factor } => json!({"rope_type": "linear", "factor": factor}),
                RopeScaling::Llama3 {
                    factor,
                    low_freq_factor,
                    high_freq_factor,
                    original_max_position_embeddings,
                } => json!({
                    "rope_type": "llama3", "factor": factor, "low_freq_factor": low_freq_factor,
                    "high_freq_factor": high_freq_factor,
                    "original_max_position_embeddings": original_max_position_embeddings,
                }),
            };
            obj.insert("rope_scaling".into(), s);
        }
        if self.sliding_window.is_some() {
            let types: Vec<&str> = self
                .layer_types
                .iter()
                .map(|k| match k {
                    AttentionKind::Full => "full_attention",
                    AttentionKind::Sliding => "sliding_attention",
                })
                .collect();
            obj.insert("layer_types".into(), json!(types));
        }
        if let Some(b) = self.bos_token_id {
            obj.insert("bos_token_id".into(), json!(b));
        }
        match self.eos_token_id.as_slice() {
            [] => {}
            [one] => {
                obj.insert("eos_token_id".into(), json!(one));
            }
            many => {
                obj.insert("eos_token_id".into(), json!(many));
            }
        }
        if let Some(p) = self.pad_token_id {
            obj.insert("pad_token_id".into(), json!(p));
        }
        v
    }
}
