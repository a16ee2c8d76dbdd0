//! GGUF (llama.cpp) checkpoints: a single file holding metadata, a tokenizer and (usually
//! quantized) tensors under llama.cpp's names.
//!
//! Loading dequantizes every tensor to f32, renames it to its Hugging Face name
//! ([`names::hf_name`]), undoes the converter's query/key row permutation for `llama` files
//! ([`names::unpermute_rows`]), derives the [`ModelConfig`] from the
//! `{arch}.*` metadata ([`config::model_config`]) and rebuilds the tokenizer from
//! `tokenizer.ggml.*` ([`tokenizer_from_gguf`]). The result trains and saves like a model loaded
//! from a Hugging Face directory; saving writes Hugging Face layout, not GGUF.

pub mod byte_level;
pub mod config;
pub mod file;
pub mod names;
pub mod pre_tokenizer;
pub mod sentencepiece;
pub mod tokenizer;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

pub use config::GgufArchitecture;
pub use file::GgufFile;
pub use tokenizer::tokenizer_from_gguf;

use super::config::ModelConfig;
use super::decoder::CausalLm;
use super::load::LoadedModel;
use super::weights::{Trainability, Weights};
use crate::{Error, Result};

/// Loads a GGUF file: model (weights dequantized to f32, then cast to `dtype` on `device`) and
/// tokenizer. Supported `general.architecture`s: `llama`, `qwen2`.
pub fn load_gguf(
    path: &Path,
    trainability: Trainability,
    dtype: DType,
    device: &Device,
) -> Result<LoadedModel> {
    let mut file = GgufFile::open(path)?;
    let arch_name = file
        .get_str("general.architecture")?
        .ok_or_else(|| Error::model(path, "missing metadata `general.architecture`"))?;
    let arch = GgufArchitecture::parse(arch_name).ok_or_else(|| {
        Error::model(
            path,
            format!(
                "unsupported architecture `general.architecture = {arch_name}`; ganpo loads llama and qwen2 GGUF files"
            ),
        )
    })?;
    let vocab_size = match file.tensor_info("token_embd.weight") {
        Some(([rows, _], _)) => *rows,
        Some((dims, _)) => {
            return Err(Error::model(
                path,
                format!("token_embd.weight has shape {dims:?}; expected [vocab, hidden]"),
            ));
        }
        None => return Err(Error::model(path, "missing tensor `token_embd.weight`")),
    };
    let config = config::model_config(&file, arch, vocab_size)?;
    let tokenizer = tokenizer_from_gguf(&file)?;
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(Error::model(
            path,
            format!(
                "the tokenizer has {} tokens but token_embd.weight only {} rows",
                tokenizer.vocab_size(),
                config.vocab_size
            ),
        ));
    }
    let tensors = read_tensors(&mut file, &config, arch)?;
    let weights = Weights::new(tensors, path, trainability, dtype, device);
    let model = CausalLm::from_weights(config, weights, dtype, device)?;
    Ok(LoadedModel {
        model,
        tokenizer,
        generation_config: None,
        source: path.to_owned(),
    })
}

/// Every tensor of `file`, dequantized to f32 and keyed by its Hugging Face name, in Hugging
/// Face's row order. Shapes are checked against `config` before any tensor data is read.
pub fn read_tensors(
    file: &mut GgufFile,
    config: &ModelConfig,
    arch: GgufArchitecture,
) -> Result<HashMap<String, Tensor>> {
    let names: Vec<String> = file.tensor_names().into_iter().map(str::to_owned).collect();
    // The config was derived from this file's metadata and tensor list, so its parameter shapes
    // (the same table random initialization uses) are what every tensor must have.
    let shapes: HashMap<String, Vec<usize>> = crate::model::init::parameter_shapes(config)
        .into_iter()
        .collect();
    let mut tensors = HashMap::with_capacity(names.len());
    for name in names {
        let err = |m: String| Error::model(file.path(), m);
        let hf = names::hf_name(&name).ok_or_else(|| {
            err(format!(
                "tensor `{name}` is not part of a {} model as ganpo knows it",
                arch.prefix()
            ))
        })?;
        let expected = shapes.get(&hf).ok_or_else(|| {
            err(format!(
                "tensor `{name}` does not fit the metadata ({} layers)",
                config.num_hidden_layers
            ))
        })?;
        let Some((dims, dtype)) = file.tensor_info(&name) else {
            continue;
        };
        if dims != expected.as_slice() {
            return Err(err(format!(
                "tensor `{name}` ({dtype:?}) has shape {dims:?} but the metadata implies {expected:?} \
                 (hidden {}, ffn {}, {} heads / {} kv heads of {}, vocab {})",
                config.hidden_size,
                config.intermediate_size,
                config.num_attention_heads,
                config.num_key_value_heads,
                config.head_dim,
                config.vocab_size
            )));
        }
        let mut tensor = file.dequantize(&name)?;
        if arch.permutes_qk()
            && let Some(heads) = names::permuted_heads(config, &hf)
        {
            tensor = names::unpermute_rows(&tensor, heads)?;
        }
        tensors.insert(hf, tensor);
    }
    Ok(tensors)
}
