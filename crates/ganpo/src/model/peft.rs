//! PEFT's adapter directory: `adapter_config.json` (a `LoraConfig`) and
//! `adapter_model.safetensors` (keys `base_model.model.<hf name>.lora_{A,B}.weight`), as
//! `PeftModel.save_pretrained` writes and `PeftModel.from_pretrained` reads them (peft 0.22;
//! pinned by `tests/lora.rs` against a PEFT-written fixture from `tools/golden/lora_peft.py`).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::{Value, json};

use super::decoder::CausalLm;
use super::load::{LoadedModel, load_model, read_safetensors};
use super::lora::{LORA_MODULES, LoraInit, LoraSpec};
use super::save::{write_json, write_safetensors};
use super::weights::Trainability;
use crate::{Error, Result};

/// The adapter's configuration file.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
/// The adapter's weights file.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// PEFT's `adapter_config.json` for `spec` on the base `base_model`, with every field PEFT 0.22
/// writes for a plain LoRA adapter (keys sorted, as `save_pretrained` does).
pub fn adapter_config_json(spec: &LoraSpec, base_model: &str) -> Value {
    json!({
        "alpha_pattern": {},
        "auto_mapping": null,
        "base_model_name_or_path": base_model,
        "bias": "none",
        "exclude_modules": null,
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "layer_replication": null,
        "layers_pattern": null,
        "layers_to_transform": null,
        "loftq_config": {},
        "lora_alpha": spec.lora_alpha,
        "lora_bias": false,
        "lora_dropout": spec.lora_dropout,
        "megatron_config": null,
        "megatron_core": "megatron.core",
        "modules_to_save": null,
        "peft_type": "LORA",
        "r": spec.r,
        "rank_pattern": {},
        "revision": null,
        "target_modules": spec.target_modules,
        "task_type": "CAUSAL_LM",
        "use_dora": false,
        "use_rslora": spec.use_rslora,
    })
}

/// Writes `model`'s adapters into `dir` (created if missing) in PEFT's layout; `base_model` goes
/// to `base_model_name_or_path`.
pub fn save_adapter(model: &CausalLm, base_model: &str, dir: &Path) -> Result<()> {
    let spec = model.lora_spec().ok_or_else(|| {
        Error::Training("save_adapter: the model has no LoRA adapters attached".into())
    })?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    write_safetensors(&model.adapter_tensors(), &dir.join(ADAPTER_WEIGHTS))?;
    write_json(
        &dir.join(ADAPTER_CONFIG),
        &adapter_config_json(spec, base_model),
    )
}

/// Reads a PEFT LoRA adapter directory: its spec and tensors by PEFT key (on the CPU). Refuses
/// what ganpo does not compute (DoRA, per-layer ranks, biases, `fan_in_fan_out`, extra modules).
pub fn read_adapter(dir: &Path) -> Result<(LoraSpec, HashMap<String, Tensor>)> {
    let path = dir.join(ADAPTER_CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::io(
            format!(
                "reading {} (a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors)",
                path.display()
            ),
            e,
        )
    })?;
    let c: Value = serde_json::from_str(&text)
        .map_err(|e| Error::model(&path, format!("not valid JSON: {e}")))?;
    let bad = |msg: String| Error::model(&path, msg);
    if c.get("peft_type").and_then(Value::as_str) != Some("LORA") {
        return Err(bad(format!(
            "peft_type is {}, ganpo reads LORA adapters only",
            c.get("peft_type").unwrap_or(&Value::Null)
        )));
    }
    let flag = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
    let empty = |k: &str| match c.get(k) {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    for key in ["use_dora", "fan_in_fan_out", "lora_bias"] {
        if flag(key) {
            return Err(bad(format!(
                "{key} = true is not supported by ganpo's LoRA"
            )));
        }
    }
    for key in [
        "rank_pattern",
        "alpha_pattern",
        "modules_to_save",
        "layers_to_transform",
        "layer_replication",
    ] {
        if !empty(key) {
            return Err(bad(format!(
                "`{key}` is set; ganpo's LoRA supports one rank and α for all targets of all layers"
            )));
        }
    }
    if c.get("bias").and_then(Value::as_str).unwrap_or("none") != "none" {
        return Err(bad("bias must be \"none\"".into()));
    }
    let r = c
        .get("r")
        .and_then(Value::as_u64)
        .filter(|&r| r > 0)
        .ok_or_else(|| bad("`r` is missing or not a positive integer".into()))?
        as usize;
    let lora_alpha = c
        .get("lora_alpha")
        .and_then(Value::as_f64)
        .ok_or_else(|| bad("`lora_alpha` is missing or not a number".into()))?;
    let targets: Vec<String> = match c.get("target_modules") {
        Some(Value::String(s)) if s == "all-linear" => {
            LORA_MODULES.iter().map(|m| m.to_string()).collect()
        }
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("target_modules holds a non-string".into()))?,
        other => {
            return Err(bad(format!(
                "target_modules = {}: ganpo reads a list of projection names or \"all-linear\" (no regular expressions)",
                other.unwrap_or(&Value::Null)
            )));
        }
    };
    let unknown: Vec<&String> = targets
        .iter()
        .filter(|t| !LORA_MODULES.contains(&t.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(bad(format!(
            "target_modules names {unknown:?}, which ganpo cannot adapt; it adapts {LORA_MODULES:?}"
        )));
    }
    let spec = LoraSpec {
        r,
        lora_alpha,
        lora_dropout: c.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0),
        target_modules: LORA_MODULES
            .iter()
            .filter(|m| targets.iter().any(|t| t == *m))
            .map(|m| m.to_string())
            .collect(),
        use_rslora: flag("use_rslora"),
    };
    let tensors = read_safetensors(&[dir.join(ADAPTER_WEIGHTS)])?;
    Ok((spec, tensors))
}

/// Loads the base model at `base` (frozen) with the PEFT adapter at `adapter` attached as
/// constants: the policy of `generate --adapter` and `eval --adapter`, and `merge`'s input.
pub fn load_with_adapter(base: &Path, adapter: &Path, device: &Device) -> Result<LoadedModel> {
    let mut loaded = load_model(base, Trainability::Frozen, DType::F32, device)?;
    let (spec, tensors) = read_adapter(adapter)?;
    loaded
        .model
        .attach_lora(&spec, LoraInit::Tensors(&tensors), false, 0)
        .map_err(|e| match e {
            Error::Config(m) => Error::model(adapter, m),
            other => other,
        })?;
    Ok(loaded)
}

/// A frozen model for inference: `path` alone, or `path` with the PEFT adapter `adapter`.
pub fn load_frozen(path: &Path, adapter: Option<&Path>, device: &Device) -> Result<LoadedModel> {
    match adapter {
        Some(dir) => load_with_adapter(path, dir, device),
        None => load_model(path, Trainability::Frozen, DType::F32, device),
    }
}
