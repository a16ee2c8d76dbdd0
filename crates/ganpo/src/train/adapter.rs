//! The policy of a run with `[lora]`: the base loaded frozen, PEFT-initialized (or
//! `lora.init_from`) adapters as the only variables, the reference the same model with its
//! adapters off, and the policy saved as a PEFT adapter directory. Without `[lora]` these are the
//! full-fine-tuning policy (trainable, saved in Hugging Face layout).

use std::path::Path;

use candle_core::{DType, Device};

use crate::config::train::TrainConfig;
use crate::model::lora::{LoraInit, LoraSpec};
use crate::model::peft::{read_adapter, save_adapter};
use crate::model::{CausalLm, LoadedModel, Trainability, load_model, save_hf};
use crate::train::trainer::Trainer;
use crate::{Error, Result};

/// Mixed into `training.seed` for the adapters' initial A (so it differs from the data order's).
const INIT_SEED: u64 = 0x6c6f_7261_2d69_6e69;
/// Mixed into `training.seed` for the adapters' dropout masks.
const DROPOUT_SEED: u64 = 0x6c6f_7261_2d64_726f;

/// The run's starting policy: with `[lora]`, the frozen base from `model.path` plus fresh (or
/// `lora.init_from`) adapters; without, `model.path` trainable.
pub fn load_policy(config: &TrainConfig, device: &Device) -> Result<LoadedModel> {
    let Some(section) = &config.lora else {
        return load_model(
            &config.model.path,
            Trainability::Trainable,
            DType::F32,
            device,
        );
    };
    let spec = section.spec()?;
    match &section.init_from {
        None => attach(
            config,
            &spec,
            LoraInit::Fresh(config.training.seed ^ INIT_SEED),
            device,
        ),
        Some(dir) => {
            let (saved, tensors) = read_adapter(dir)?;
            check_same_adapter(&spec, &saved, "lora.init_from", dir)?;
            attach(config, &spec, LoraInit::Tensors(&tensors), device)
        }
    }
}

/// The policy of checkpoint `dir` (its `policy/`): the adapter on the frozen base for LoRA runs,
/// else the saved full model.
pub fn resume_policy(config: &TrainConfig, dir: &Path, device: &Device) -> Result<LoadedModel> {
    let policy_dir = dir.join("policy");
    let Some(section) = &config.lora else {
        return load_model(&policy_dir, Trainability::Trainable, DType::F32, device);
    };
    let spec = section.spec()?;
    let (saved, tensors) = read_adapter(&policy_dir)?;
    check_same_adapter(&spec, &saved, "the checkpoint's adapter", &policy_dir)?;
    attach(config, &spec, LoraInit::Tensors(&tensors), device)
}

fn attach(
    config: &TrainConfig,
    spec: &LoraSpec,
    init: LoraInit<'_>,
    device: &Device,
) -> Result<LoadedModel> {
    let mut base = load_model(&config.model.path, Trainability::Frozen, DType::F32, device)?;
    base.model
        .attach_lora(spec, init, true, config.training.seed ^ DROPOUT_SEED)?;
    Ok(base)
}

/// An adapter read from `dir` must have the config's rank, targets and scaling.
fn check_same_adapter(want: &LoraSpec, got: &LoraSpec, what: &str, dir: &Path) -> Result<()> {
    let mut diffs = Vec::new();
    if want.r != got.r {
        diffs.push(format!("r = {} (config: {})", got.r, want.r));
    }
    if want.target_modules != got.target_modules {
        diffs.push(format!(
            "target_modules = {:?} (config: {:?})",
            got.target_modules, want.target_modules
        ));
    }
    if want.scaling() != got.scaling() {
        diffs.push(format!(
            "lora_alpha = {}, use_rslora = {} (config: {}, {})",
            got.lora_alpha, got.use_rslora, want.lora_alpha, want.use_rslora
        ));
    }
    if diffs.is_empty() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "{what} ({}) has {}; set [lora] to the adapter's values",
        dir.display(),
        diffs.join(", ")
    )))
}

/// The reference of a run: with `[lora]` and no `model.reference`, the policy with its adapters
/// off (the base tensors shared, not copied); otherwise `None` (the caller loads one).
pub fn adapters_off_reference(config: &TrainConfig, policy: &CausalLm) -> Option<CausalLm> {
    (config.lora.is_some() && config.model.reference.is_none() && policy.lora_spec().is_some())
        .then(|| policy.without_adapters())
}

impl Trainer {
    /// Writes the policy into `dir`: a PEFT adapter directory (plus the tokenizer) with LoRA,
    /// else the full model in Hugging Face layout.
    pub fn save_policy(&self, dir: &Path) -> Result<()> {
        if self.policy.lora_spec().is_none() {
            return save_hf(
                &self.policy,
                &self.tokenizer,
                self.generation_config.as_ref(),
                dir,
            );
        }
        let base = self.config.model.path.to_string_lossy();
        save_adapter(&self.policy, &base, dir)?;
        self.tokenizer.save_hf(dir)
    }
}
