//! Model configuration: one validated [`ModelConfig`] that the decoder reads (resolved from Hugging
//! Face's `config.json` in `hf_config.rs`, or from GGUF metadata). Architecture-specific behaviour
//! is data here, not code paths.

pub use crate::kernels::Activation;

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

impl ModelConfig {
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
