//! Loading a model and its tokenizer from a Hugging Face directory or a GGUF file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use super::config::ModelConfig;
use super::decoder::CausalLm;
use super::weights::{Trainability, Weights};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};

/// A model with everything needed to use it.
#[derive(Debug)]
pub struct LoadedModel {
    /// The decoder.
    pub model: CausalLm,
    /// Its tokenizer (with chat template and special tokens).
    pub tokenizer: Tokenizer,
    /// `generation_config.json`, if the directory has one (kept to be saved alongside).
    pub generation_config: Option<Value>,
    /// Where it was loaded from.
    pub source: PathBuf,
}

/// The checkpoint formats ganpo reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFormat {
    /// A Hugging Face model directory (`config.json` + safetensors).
    HuggingFace,
    /// A single GGUF file (llama.cpp).
    Gguf,
}

/// Decides the format of `path`: a directory is Hugging Face, a file starting with `GGUF` is GGUF.
pub fn detect_format(path: &Path) -> Result<CheckpointFormat> {
    if path.is_dir() {
        return Ok(CheckpointFormat::HuggingFace);
    }
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("opening model {}", path.display()), e))?;
    std::io::Read::read_exact(&mut file, &mut magic).map_err(|_| {
        Error::model(
            path,
            "file is too short to be a model; expected a GGUF file or a Hugging Face directory",
        )
    })?;
    if &magic == b"GGUF" {
        Ok(CheckpointFormat::Gguf)
    } else {
        Err(Error::model(
            path,
            "not a GGUF file (bad magic) and not a directory; pass a Hugging Face model directory or a .gguf file",
        ))
    }
}

/// Loads a model from a Hugging Face directory or a GGUF file.
pub fn load_model(
    path: &Path,
    trainability: Trainability,
    dtype: DType,
    device: &Device,
) -> Result<LoadedModel> {
    match detect_format(path)? {
        CheckpointFormat::HuggingFace => load_hf_dir(path, trainability, dtype, device),
        CheckpointFormat::Gguf => super::gguf::load_gguf(path, trainability, dtype, device),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| Error::model(path, format!("not valid JSON: {e}")))
}

/// The safetensors files of a model directory: the shards listed in `model.safetensors.index.json`,
/// or `model.safetensors`.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let value = read_json(&index)?;
        let map = value
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::model(&index, "no `weight_map` object"))?;
        let mut files: Vec<String> = map
            .values()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        files.sort();
        files.dedup();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    Err(Error::model(
        dir,
        "no model.safetensors or model.safetensors.index.json; ganpo reads safetensors checkpoints (convert .bin files with `save_pretrained(safe_serialization=True)`)",
    ))
}

/// Reads every tensor of the safetensors files (on the CPU, in their stored dtype).
pub fn read_safetensors(files: &[PathBuf]) -> Result<HashMap<String, Tensor>> {
    let mut all = HashMap::new();
    for file in files {
        let bytes =
            std::fs::read(file).map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| {
            Error::model(file, format!("corrupt or truncated safetensors file: {e}"))
        })?;
        all.extend(tensors);
    }
    Ok(all)
}

/// Loads a Hugging Face model directory.
pub fn load_hf_dir(
    dir: &Path,
    trainability: Trainability,
    dtype: DType,
    device: &Device,
) -> Result<LoadedModel> {
    let config_path = dir.join("config.json");
    if !config_path.exists() {
        return Err(Error::model(
            dir,
            "no config.json; is this a Hugging Face model directory?",
        ));
    }
    let config = ModelConfig::from_file(&config_path)?;
    let tensors = read_safetensors(&safetensors_files(dir)?)?;
    let weights = Weights::new(tensors, dir, trainability, dtype, device);
    let model = CausalLm::from_weights(config, weights, dtype, device)?;
    let tokenizer = Tokenizer::from_hf_dir(dir)?;
    let gen_path = dir.join("generation_config.json");
    let generation_config = if gen_path.exists() {
        Some(read_json(&gen_path)?)
    } else {
        None
    };
    Ok(LoadedModel {
        model,
        tokenizer,
        generation_config,
        source: dir.to_owned(),
    })
}
