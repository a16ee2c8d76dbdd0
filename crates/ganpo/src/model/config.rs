//! Model configuration: Hugging Face `config.json` parsed raw, then resolved into one validated
//! [`ModelConfig`] that the decoder reads. Architecture-specific behaviour is data here, not code paths.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

pub use crate::kernels::Activation;
use crate::{Error, Result};

/// The decoder families ganpo trains. Chosen from `config.json`'s `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Llama 2/3, TinyLlama, SmolLM/SmolLM2 (`model_type = "llama"`).
    Llama,
    /// Qwen2 / Qwen2.5: bias on q/k/v projections (`"qwen2"`).
    Qwen2,
    /// Mistral: Llama with optional sliding-window attention (`"mistral"`).
    Mistral,
    /// Gemma: √d embedding scale, `(1+w)` RMSNorm, GeGLU with tanh-GELU (`"gemma"`).
    Gemma,
    /// Gemma-2: Gemma plus sandwich norms, soft-capping, query pre-attention scalar and alternating
    /// sliding/global attention layers (`"gemma2"`).
    Gemma2,
}

impl Architecture {
    /// The `model_type` string Hugging Face uses.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Mistral => "mistral",
            Architecture::Gemma => "gemma",
            Architecture::Gemma2 => "gemma2",
        }
    }

    /// The `architectures[0]` class name Hugging Face uses.
    pub fn hf_class(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
            Architecture::Mistral => "MistralForCausalLM",
            Architecture::Gemma => "GemmaForCausalLM",
            Architecture::Gemma2 => "Gemma2ForCausalLM",
        }
    }

    /// Parses a `model_type`; unknown ones are an error that lists the supported ones.
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        Some(match model_type {
            "llama" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            "mistral" => Architecture::Mistral,
            "gemma" => Architecture::Gemma,
            "gemma2" => Architecture::Gemma2,
            _ => return None,
        })
    }

    /// Gemma-style RMSNorm scales by `(1 + w)` instead of `w`.
    pub fn norm_adds_one(self) -> bool {
        matches!(self, Architecture::Gemma | Architecture::Gemma2)
    }

    /// Gemma-style models multiply the token embeddings by `√hidden_size`.
    pub fn scales_embeddings(self) -> bool {
        matches!(self, Architecture::Gemma | Architecture::Gemma2)
    }
}

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

/// Rotary-embedding frequency scaling (`rope_scaling` / `rope_parameters` in `config.json`).
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Position interpolation: frequencies divided by `factor`.
    Linear {
        /// Interpolation factor.
        factor: f64,
    },
    /// Llama 3.1's piecewise frequency scaling.
    Llama3 {
        /// Scaling factor for low frequencies.
        factor: f64,
        /// Wavelength boundary (as a fraction of the original context) below which frequencies scale.
        low_freq_factor: f64,
        /// Wavelength boundary above which frequencies are kept.
        high_freq_factor: f64,
        /// The context length the model was pre-trained with.
        original_max_position_embeddings: f64,
    },
}

/// Whether a decoder layer attends globally or within a sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionKind {
    /// Causal attention over all previous positions.
    Full,
    /// Causal attention over the last `sliding_window` positions (query included).
    Sliding,
}

/// A resolved, validated decoder configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Decoder family.
    pub architecture: Architecture,
    /// Vocabulary size (rows of the embedding and of the LM head).
    pub vocab_size: usize,
    /// Model width d.
    pub hidden_size: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention when smaller than the query heads).
    pub num_key_value_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base frequency θ.
    pub rope_theta: f64,
    /// Optional RoPE frequency scaling.
    pub rope_scaling: Option<RopeScaling>,
    /// Longest supported position.
    pub max_position_embeddings: usize,
    /// LM head shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Bias on the q/k/v projections (Qwen2; Llama's `attention_bias` also biases `o_proj`).
    pub qkv_bias: bool,
    /// Bias on the output projection (Llama `attention_bias`).
    pub o_bias: bool,
    /// Bias on the MLP projections (Llama `mlp_bias`).
    pub mlp_bias: bool,
    /// MLP gate activation.
    pub hidden_act: Activation,
    /// Sliding-window width for [`AttentionKind::Sliding`] layers.
    pub sliding_window: Option<usize>,
    /// Attention kind per layer (length `num_hidden_layers`).
    pub layer_types: Vec<AttentionKind>,
    /// Gemma-2: `tanh(s / c) * c` on attention scores.
    pub attn_logit_softcapping: Option<f64>,
    /// Gemma-2: `tanh(z / c) * c` on the output logits.
    pub final_logit_softcapping: Option<f64>,
    /// Attention scores are scaled by `query_pre_attn_scalar^-1/2` (default `head_dim`).
    pub query_pre_attn_scalar: f64,
    /// Beginning-of-sequence token id, if any.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token ids (the first is the canonical one).
    pub eos_token_id: Vec<u32>,
    /// Padding token id, if the config names one.
    pub pad_token_id: Option<u32>,
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

    /// Number of parameters the decoder holds (tied embeddings counted once).
    pub fn num_parameters(&self) -> usize {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let mut attn = d * q + 2 * d * kv + q * d;
        if self.qkv_bias {
            attn += q + 2 * kv;
        }
        if self.o_bias {
            attn += d;
        }
        let mut mlp = 3 * d * f;
        if self.mlp_bias {
            mlp += 2 * f + d;
        }
        let norms_per_layer = if self.architecture == Architecture::Gemma2 {
            4
        } else {
            2
        };
        let layer = attn + mlp + norms_per_layer * d;
        let head = if self.tie_word_embeddings { 0 } else { v * d };
        v * d + self.num_hidden_layers * layer + d + head
    }
}
