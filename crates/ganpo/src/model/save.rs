//! Saving a model in Hugging Face layout (`model.safetensors` with HF key names, `config.json`,
//! tokenizer files, `generation_config.json`) so that `transformers` loads the result.

use std::path::Path;

use candle_core::{DType, Tensor};

use super::decoder::CausalLm;
use crate::tokenize::Tokenizer;
use crate::{Error, Result};

/// Writes `model`'s weights (f32), config and `tokenizer` into `dir` (created if missing).
/// A tied model's LM head is not stored, as transformers expects.
pub fn save_hf(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    generation_config: Option<&serde_json::Value>,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let path = dir.join("model.safetensors");
    write_safetensors(model.named_parameters(), &path)?;
    write_json(&dir.join("config.json"), &model.config().to_hf_json())?;
    if let Some(gen_cfg) = generation_config {
        write_json(&dir.join("generation_config.json"), gen_cfg)?;
    }
    tokenizer.save_hf(dir)
}

/// Writes `value` as pretty JSON to `path`.
pub(crate) fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Writes tensors as f32 safetensors with `{"format": "pt"}` metadata, which transformers checks.
pub fn write_safetensors(tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
    let mut buffers = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let data: Vec<f32> = t.detach().to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((name.clone(), t.dims().to_vec(), bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::model(path, format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = Some(std::collections::HashMap::from([(
        "format".to_string(),
        "pt".to_string(),
    )]));
    safetensors::serialize_to_file(views, metadata, path)
        .map_err(|e| Error::model(path, format!("cannot write weights: {e}")))
}
