//! `ganpo inspect-model`: what a checkpoint contains.

use std::path::Path;

use anyhow::Context;
use candle_core::{DType, Device};
use ganpo::model::{Trainability, load_model};
use serde_json::json;

pub fn run(path: &Path, as_json: bool) -> anyhow::Result<()> {
    let loaded = load_model(path, Trainability::Frozen, DType::F32, &Device::Cpu)
        .with_context(|| format!("loading {}", path.display()))?;
    let config = loaded.model.config();
    let params: usize = loaded
        .model
        .named_parameters()
        .iter()
        .map(|(_, t)| t.elem_count())
        .sum();
    let tok = &loaded.tokenizer;
    let special = tok.special_tokens();
    let name = |t: &Option<ganpo::tokenize::SpecialToken>| {
        t.as_ref().map(|t| format!("{} ({})", t.text, t.id))
    };
    let report = json!({
        "path": path.display().to_string(),
        "architecture": config.architecture.model_type(),
        "parameters": params,
        "dtype": "f32",
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "attention_heads": config.num_attention_heads,
        "kv_heads": config.num_key_value_heads,
        "head_dim": config.head_dim,
        "vocab_size": config.vocab_size,
        "tokenizer_vocab_size": tok.vocab_size(),
        "tied_embeddings": config.tie_word_embeddings,
        "max_position_embeddings": config.max_position_embeddings,
        "rope_theta": config.rope_theta,
        "bos_token": name(&special.bos),
        "eos_token": name(&special.eos),
        "pad_token": name(&special.pad),
        "chat_template": tok.chat_template().is_some(),
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let millions = params as f64 / 1e6;
    println!("model         {}", path.display());
    println!("architecture  {}", config.architecture.model_type());
    println!("parameters    {params} ({millions:.1} M)");
    println!("dtype         f32 (training dtype; weights converted on load)");
    println!(
        "shape         {} layers, d {}, ffn {}, {} heads / {} kv heads, head_dim {}",
        config.num_hidden_layers,
        config.hidden_size,
        config.intermediate_size,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.head_dim
    );
    println!(
        "vocab         {} (tokenizer: {})",
        config.vocab_size,
        tok.vocab_size()
    );
    println!("tied head     {}", config.tie_word_embeddings);
    println!("rope theta    {}", config.rope_theta);
    let show = |t: Option<String>| t.unwrap_or_else(|| "-".into());
    println!(
        "bos/eos/pad   {} / {} / {}",
        show(name(&special.bos)),
        show(name(&special.eos)),
        show(name(&special.pad))
    );
    println!(
        "chat template {}",
        if tok.chat_template().is_some() {
            "present"
        } else {
            "absent"
        }
    );
    Ok(())
}
