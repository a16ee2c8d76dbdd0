//! GGUF (llama.cpp) checkpoints.

use std::path::Path;

use candle_core::{DType, Device};

use super::load::LoadedModel;
use super::weights::Trainability;
use crate::{Error, Result};

/// Loads a GGUF file.
pub fn load_gguf(
    path: &Path,
    _trainability: Trainability,
    _dtype: DType,
    _device: &Device,
) -> Result<LoadedModel> {
    Err(Error::model(path, "GGUF loading is not implemented yet"))
}
