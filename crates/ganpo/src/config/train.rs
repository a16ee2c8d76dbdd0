//! The `ganpo train` configuration: one strict serde tree (unknown keys are errors), with TRL's
//! names where TRL has the concept. Every field has a documented default; `examples/*.toml` are
//! parsed by a test so they cannot drift.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::overrides::apply_overrides;
use super::paths::resolve_paths;
use super::source::{describe_toml_error, override_for};
use crate::data::{DataConfig, TruncationMode};
use crate::ganpo::DiscriminatorConfig;
use crate::losses::LossConfig;
use crate::optim::{AdamWConfig, ScheduleKind};
use crate::{Error, Result};

/// `[model]`: the policy to train and its frozen reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Hugging Face directory or GGUF file the policy starts from.
    pub path: PathBuf,
    /// The reference model; default: the same checkpoint as `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<PathBuf>,
    /// Device: `cpu` (default) or `cuda:N` (needs a CUDA build).
    #[serde(default = "default_device")]
    pub device: String,
}

fn default_device() -> String {
    "cpu".into()
}

/// `[data]`: preference files and the tokenization limits (TRL's names and defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// Training preference data (JSONL or Parquet).
    pub train_file: PathBuf,
    /// Held-out preference data for `eval_*` metrics (optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_file: Option<PathBuf>,
    /// Longest prompt + completion in tokens (TRL `max_length`, default 1024).
    pub max_length: usize,
    /// Longest prompt in tokens (TRL `max_prompt_length`, default 512).
    pub max_prompt_length: usize,
    /// Longest completion in tokens, EOS included (default: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_length: Option<usize>,
    /// Which end survives the `max_length` cut: `keep_end` (default) or `keep_start`.
    pub truncation_mode: TruncationMode,
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            train_file: PathBuf::new(),
            eval_file: None,
            max_length: 1024,
            max_prompt_length: 512,
            max_completion_length: None,
            truncation_mode: TruncationMode::KeepEnd,
        }
    }
}

impl DataSection {
    /// The tokenization limits.
    pub fn data_config(&self) -> DataConfig {
        DataConfig {
            max_length: Some(self.max_length),
            max_prompt_length: Some(self.max_prompt_length),
            max_completion_length: self.max_completion_length,
            truncation_mode: self.truncation_mode,
        }
    }
}

/// Which positions of a sequence the discriminators attend to and mean-pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Prompt and completion tokens, no padding (default).
    Sequence,
    /// Completion tokens only.
    Completion,
    /// Every position, padding included (the authors' behaviour: pooled features carry length).
    Unmasked,
}

/// Reproduce the authors' code where it differs from ganpo's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compat {
    /// ganpo's behaviour (see `docs/deviations.md`).
    None,
    /// The authors' `GANPO_trl.py` step for step: unmasked pooling; per micro-batch, running means
    /// and discriminator losses (scaled by 1/accumulation), the gated discriminator update
    /// (`(optimizer_step + 1) % accumulation == 0`, on the last micro-batch, with the gradients
    /// summed since the last update), then the generator term through the updated
    /// discriminators; their cosine discriminator schedule stepped per update; weight decay on
    /// every discriminator parameter.
    Authors,
}

/// `[ganpo]`: the latent adversarial regularizer. Absent = plain preference optimization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GanpoSection {
    /// λ, the weight of the generator term L_G (authors: 1.0).
    pub lambda: f64,
    /// Discriminator learning rate; default: policy `learning_rate` / 2 (the authors' setting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disc_learning_rate: Option<f64>,
    /// Discriminator AdamW weight decay (authors: 0.01).
    pub disc_weight_decay: f64,
    /// Discriminator updates per policy optimizer step (default 1).
    pub disc_steps: usize,
    /// Which positions the discriminators see.
    pub pooling: Pooling,
    /// Reproduce the authors' code instead of ganpo's fixes.
    pub compat: Compat,
    /// EMA momentum of the six running means (authors: 0.9).
    pub momentum: f64,
    /// Seed of the discriminators' initialization and dropout.
    pub seed: u64,
    /// Start both discriminators from `DIR/disc_chosen.safetensors` and
    /// `DIR/disc_rejected.safetensors` (PyTorch `state_dict` names, u/v included) instead of `seed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// The discriminator network (authors: width 512, depth 2, 8 heads, dropout 0.1, 2048 positions).
    pub discriminator: DiscriminatorConfig,
}

impl Default for GanpoSection {
    fn default() -> Self {
        GanpoSection {
            lambda: 1.0,
            disc_learning_rate: None,
            disc_weight_decay: 0.01,
            disc_steps: 1,
            pooling: Pooling::Sequence,
            compat: Compat::None,
            momentum: 0.9,
            seed: 0,
            init_from: None,
            discriminator: DiscriminatorConfig::default(),
        }
    }
}

/// `[training]`: the loop (TRL / transformers `TrainingArguments` names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSection {
    /// Where checkpoints, metrics and the final model go.
    pub output_dir: PathBuf,
    /// Allow writing into a non-empty `output_dir` (never silently: default false).
    pub overwrite_output_dir: bool,
    /// Passes over the training data (default 1).
    pub num_train_epochs: usize,
    /// Stop after this many optimizer steps (overrides epochs when set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u64>,
    /// Pairs per micro-batch (TRL `per_device_train_batch_size`, default 8).
    pub per_device_train_batch_size: usize,
    /// Micro-batches per optimizer step (default 1).
    pub gradient_accumulation_steps: usize,
    /// Peak policy learning rate (TRL DPO default 1e-6).
    pub learning_rate: f64,
    /// `constant`, `linear` (default) or `cosine`.
    pub lr_scheduler_type: ScheduleKind,
    /// Warmup optimizer steps (takes precedence over `warmup_ratio`).
    pub warmup_steps: u64,
    /// Warmup as a fraction of the total steps.
    pub warmup_ratio: f64,
    /// Global gradient-norm clip (default 1.0; 0 disables).
    pub max_grad_norm: f64,
    /// Recompute each policy decoder layer's activations during backward instead of keeping
    /// them (default false): less peak memory for about one more forward pass of time.
    pub gradient_checkpointing: bool,
    /// Seed of the data order.
    pub seed: u64,
    /// Shuffle the training data every epoch (default true).
    pub shuffle: bool,
    /// Write averaged metrics every this many optimizer steps (default 10).
    pub logging_steps: u64,
    /// Evaluate on `eval_file` every this many steps (0 = only at the end).
    pub eval_steps: u64,
    /// Pairs per evaluation batch (default: the training batch size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_device_eval_batch_size: Option<usize>,
    /// Checkpoint every this many steps (0 = only at the end).
    pub save_steps: u64,
    /// Keep only the newest this many checkpoints (0 = all).
    pub save_total_limit: usize,
}

impl Default for TrainingSection {
    fn default() -> Self {
        TrainingSection {
            output_dir: PathBuf::from("ganpo-output"),
            overwrite_output_dir: false,
            num_train_epochs: 1,
            max_steps: None,
            per_device_train_batch_size: 8,
            gradient_accumulation_steps: 1,
            learning_rate: 1e-6,
            lr_scheduler_type: ScheduleKind::Linear,
            warmup_steps: 0,
            warmup_ratio: 0.0,
            max_grad_norm: 1.0,
            gradient_checkpointing: false,
            seed: 42,
            shuffle: true,
            logging_steps: 10,
            eval_steps: 0,
            per_device_eval_batch_size: None,
            save_steps: 500,
            save_total_limit: 2,
        }
    }
}

/// The whole run configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Policy and reference.
    pub model: ModelSection,
    /// Data files and limits.
    pub data: DataSection,
    /// The preference loss (default: DPO sigmoid, β = 0.1).
    #[serde(default)]
    pub loss: LossConfig,
    /// The GANPO regularizer; absent = off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ganpo: Option<GanpoSection>,
    /// Low-rank adapters (PEFT's names); absent = full fine-tuning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<super::lora::LoraSection>,
    /// The loop.
    #[serde(default)]
    pub training: TrainingSection,
    /// Policy AdamW hyper-parameters.
    #[serde(default)]
    pub optimizer: AdamWConfig,
}

impl TrainConfig {
    /// Parses TOML text, applies `--set` overrides, and validates. `origin` names the file in
    /// errors. Paths are kept as written (see [`TrainConfig::load`] for the relative-path rule).
    pub fn from_toml(text: &str, overrides: &[String], origin: &str) -> Result<Self> {
        Self::parse(text, overrides, origin, None)
    }

    /// Reads `path`, resolves the relative paths it holds against the file's directory and those
    /// set by `--set` against the current directory (see [`super::paths`]), then validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading config {}", path.display()), e))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        Self::parse(&text, overrides, &path.display().to_string(), Some(dir))
    }

    /// Reads the resolved config saved with a checkpoint. Its paths are absolute; one saved by an
    /// earlier version may hold paths relative to the directory that run started in, which are
    /// taken against the current directory (not the checkpoint's).
    pub fn load_saved(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading config {}", path.display()), e))?;
        Self::parse(&text, &[], &path.display().to_string(), Some(Path::new("")))
    }

    fn parse(text: &str, overrides: &[String], origin: &str, base: Option<&Path>) -> Result<Self> {
        let mut doc: toml::Table = toml::from_str(text)
            .map_err(|e| Error::Config(format!("{origin}: invalid TOML: {e}")))?;
        if let Some(dir) = base {
            resolve_paths(&mut doc, dir, |_| true);
        }
        apply_overrides(&mut doc, overrides)?;
        if base.is_some() {
            resolve_paths(&mut doc, Path::new(""), |k| {
                override_for(k, overrides).is_some()
            });
        }
        let config: TrainConfig = toml::Value::Table(doc)
            .try_into()
            .map_err(|e| Error::Config(describe_toml_error(&e, text, overrides, origin)))?;
        config.check().map_err(|invalid| {
            Error::Config(match override_for(&invalid.key, overrides) {
                Some(item) => format!("--set {item}: {}", invalid.message),
                None => format!("{origin}: {}", invalid.message),
            })
        })?;
        Ok(config)
    }

    /// The resolved config as TOML (saved with every checkpoint and at the top of the metrics log).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config serializes")
    }

    /// Checks every value once (see `config/validate.rs`); the message names the key.
    pub fn validate(&self) -> Result<()> {
        self.check()
            .map_err(|invalid| Error::Config(invalid.message))
    }

    /// The discriminator learning rate (default: policy lr / 2).
    pub fn disc_learning_rate(&self) -> Option<f64> {
        self.ganpo.as_ref().map(|g| {
            g.disc_learning_rate
                .unwrap_or(self.training.learning_rate / 2.0)
        })
    }
}
