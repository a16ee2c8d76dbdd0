//! LoRA test helpers: the tiny Llama fixture (frozen), PEFT's golden inputs and logits
//! (`tools/golden/lora_peft.py`), and LoRA run configs.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use ganpo::config::train::TrainConfig;
use ganpo::model::{CausalLm, Trainability, load_model};

use super::config::ConfigText;
use super::{fixture, load_golden};

/// A small GANPO table for the fixture.
pub const GANPO: &str = "[ganpo]\nlambda = 1.0\n[ganpo.discriminator]\nwidth = 32\ndepth = 1\nheads = 4\nmax_positions = 64\n";

/// The tiny Llama fixture, frozen.
pub fn base() -> CausalLm {
    load_model(
        &fixture("models/llama"),
        Trainability::Frozen,
        DType::F32,
        &Device::Cpu,
    )
    .unwrap()
    .model
}

/// PEFT's fixed inputs and its golden tensors (`logits`, `base_logits`).
pub fn golden() -> (Tensor, Tensor, HashMap<String, Tensor>) {
    let g = load_golden(&fixture("lora/golden.safetensors"));
    let ids = g["input_ids"].to_dtype(DType::U32).unwrap();
    let mask = g["attention_mask"].to_dtype(DType::U32).unwrap();
    (ids, mask, g)
}

/// The model's logits on `ids`.
pub fn logits(model: &CausalLm, ids: &Tensor, mask: &Tensor) -> Tensor {
    model.forward(ids, mask).unwrap().logits
}

/// The f32 bit patterns of `t`, for bit-exact comparisons.
pub fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// A run of the fixture writing to `out`, with `training` lines and the `lora` tables.
pub fn lora_config(out: &Path, training: &str, lora: &str) -> TrainConfig {
    ConfigText::new(out)
        .training("per_device_train_batch_size = 4\nlearning_rate = 1e-2\nlogging_steps = 1\nsave_steps = 0")
        .training(training)
        .tables(lora)
        .build()
}
