//! A [`ModelConfig`] from GGUF metadata: the `{arch}.*` keys are translated into the
//! `config.json` Hugging Face would have, which then goes through the same validation.

use serde_json::{Map, Value, json};

use super::file::GgufFile;
use crate::Result;
use crate::model::config::{Architecture, ModelConfig};

/// The `general.architecture` values ganpo loads, and what each implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgufArchitecture {
    /// `llama` (Llama 1–3, Mistral 7B v0.1, SmolLM, TinyLlama): Q/K rows permuted by the converter.
    Llama,
    /// `qwen2` (Qwen2/2.5): biased q/k/v, NeoX-style RoPE, so no permutation.
    Qwen2,
}

impl GgufArchitecture {
    /// Parses `general.architecture`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "llama" => Some(GgufArchitecture::Llama),
            "qwen2" => Some(GgufArchitecture::Qwen2),
            _ => None,
        }
    }

    /// The metadata key prefix (`llama.`, `qwen2.`).
    pub fn prefix(self) -> &'static str {
        match self {
            GgufArchitecture::Llama => "llama",
            GgufArchitecture::Qwen2 => "qwen2",
        }
    }

    /// The decoder family ganpo builds.
    pub fn architecture(self) -> Architecture {
        match self {
            GgufArchitecture::Llama => Architecture::Llama,
            GgufArchitecture::Qwen2 => Architecture::Qwen2,
        }
    }

    /// Whether `convert_hf_to_gguf.py` permuted the q/k projection rows (llama.cpp's llama graph
    /// uses interleaved RoPE; its qwen2 graph uses the NeoX/Hugging Face layout).
    pub fn permutes_qk(self) -> bool {
        self == GgufArchitecture::Llama
    }
}

/// Builds the configuration of `file`, an `arch` model whose embedding has `vocab_size` rows.
pub fn model_config(
    file: &GgufFile,
    arch: GgufArchitecture,
    vocab_size: usize,
) -> Result<ModelConfig> {
    let p = arch.prefix();
    let key = |k: &str| format!("{p}.{k}");
    let err = |m: String| crate::Error::model(file.path(), m);

    if let Some(experts) = file.get_usize(&key("expert_count"))?
        && experts > 0
    {
        return Err(err(format!(
            "mixture-of-experts models ({experts} experts) are not supported"
        )));
    }
    let hidden = file.require_usize(&key("embedding_length"))?;
    let heads = file.require_usize(&key("attention.head_count"))?;
    let kv_heads = file
        .get_usize(&key("attention.head_count_kv"))?
        .unwrap_or(heads);
    let head_dim = match file.get_usize(&key("attention.key_length"))? {
        Some(k) => k,
        None if heads > 0 && hidden % heads == 0 => hidden / heads,
        None => {
            return Err(err(format!(
                "{p}.embedding_length ({hidden}) is not divisible by {p}.attention.head_count ({heads}) and no {p}.attention.key_length is given"
            )));
        }
    };
    if let Some(v) = file.get_usize(&key("attention.value_length"))?
        && v != head_dim
    {
        return Err(err(format!(
            "key length {head_dim} differs from value length {v}; not supported"
        )));
    }
    if let Some(rope_dim) = file.get_usize(&key("rope.dimension_count"))?
        && rope_dim != head_dim
    {
        return Err(err(format!(
            "partial rotary embeddings ({p}.rope.dimension_count = {rope_dim}, head dim {head_dim}) are not supported"
        )));
    }
    if let Some(n) = file.get_usize(&format!("{p}.vocab_size"))?
        && n != vocab_size
    {
        return Err(err(format!(
            "{p}.vocab_size = {n} but token_embd.weight has {vocab_size} rows"
        )));
    }
    if file.has_tensor("rope_freqs.weight") {
        return Err(err(
            "Llama 3.1-style RoPE frequency factors (rope_freqs.weight) are not supported yet; load the Hugging Face checkpoint instead".into(),
        ));
    }
    let rope_scaling = match file.get_str(&key("rope.scaling.type"))? {
        None | Some("none") => Value::Null,
        Some("linear") => {
            let factor = file.get_f64(&key("rope.scaling.factor"))?.ok_or_else(|| {
                err(format!(
                    "{p}.rope.scaling.type is linear but {p}.rope.scaling.factor is missing"
                ))
            })?;
            json!({"rope_type": "linear", "factor": factor})
        }
        Some(other) => {
            return Err(err(format!(
                "RoPE scaling `{other}` is not supported (supported: none, linear)"
            )));
        }
    };

    let mut cfg = Map::new();
    let mut set = |k: &str, v: Value| {
        cfg.insert(k.to_owned(), v);
    };
    set("model_type", json!(arch.architecture().model_type()));
    set("vocab_size", json!(vocab_size));
    set("hidden_size", json!(hidden));
    set(
        "intermediate_size",
        json!(file.require_usize(&key("feed_forward_length"))?),
    );
    set(
        "num_hidden_layers",
        json!(file.require_usize(&key("block_count"))?),
    );
    set("num_attention_heads", json!(heads));
    set("num_key_value_heads", json!(kv_heads));
    set("head_dim", json!(head_dim));
    set(
        "rms_norm_eps",
        json!(
            file.get_f64(&key("attention.layer_norm_rms_epsilon"))?
                .unwrap_or(1e-5)
        ),
    );
    set(
        "rope_theta",
        json!(file.get_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0)),
    );
    set("rope_scaling", rope_scaling);
    if let Some(ctx) = file.get_usize(&key("context_length"))? {
        set("max_position_embeddings", json!(ctx));
    }
    set(
        "tie_word_embeddings",
        json!(!file.has_tensor("output.weight")),
    );
    if arch == GgufArchitecture::Llama {
        // Llama's `attention_bias` puts a bias on q, k, v and o alike.
        set(
            "attention_bias",
            json!(file.has_tensor("blk.0.attn_q.bias")),
        );
    }
    for (gguf_key, hf_key) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token_id"),
    ] {
        if let Some(id) = file.get_usize(gguf_key)? {
            set(hf_key, json!(id));
        }
    }
    ModelConfig::from_json(file.path(), &Value::Object(cfg))
}
