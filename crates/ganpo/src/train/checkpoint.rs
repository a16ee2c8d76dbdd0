//! Complete training checkpoints: everything needed to continue a run exactly.
//!
//! ```text
//! checkpoint-<step>/
//!   policy/                     Hugging Face layout (config.json, model.safetensors, tokenizer);
//!                               with [lora], the PEFT adapter (adapter_config.json,
//!                               adapter_model.safetensors) + tokenizer, not the base model
//!   optimizer.safetensors       policy AdamW moments
//!   disc_chosen.safetensors     D⁺ parameters and spectral-norm u/v   (GANPO)
//!   disc_rejected.safetensors   D⁻                                     (GANPO)
//!   disc_chosen_optimizer.safetensors, disc_rejected_optimizer.safetensors
//!   disc_chosen_pending.safetensors, disc_rejected_pending.safetensors
//!                               gradients awaiting the authors' gated update (compat, k > 1)
//!   trainer_state.json          format version, step, data cursor, optimizer step counts,
//!                               loss state, running means, dropout RNG states
//!   config.toml                 the resolved run configuration
//! ```
//! Written atomically by [`super::checkpoint_dir::save_atomically`]; loading checks the format
//! version first.

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::checkpoint_dir::save_atomically;
use super::data_order::DataCursor;
use super::trainer::Trainer;
use crate::config::train::TrainConfig;
use crate::ganpo::RunningMeans;
use crate::ganpo::rng::DropoutRng;
use crate::losses::LossState;
use crate::{Error, Result};

const PENDING_CHOSEN: &str = "disc_chosen_pending.safetensors";
const PENDING_REJECTED: &str = "disc_rejected_pending.safetensors";

/// The checkpoint layout version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GanpoState {
    means: RunningMeans,
    plus_dropout: DropoutRng,
    minus_dropout: DropoutRng,
    plus_optimizer_step: u64,
    minus_optimizer_step: u64,
    /// `compat = "authors"`: discriminator gradients summed since the last gated update are in
    /// `disc_{chosen,rejected}_pending.safetensors`.
    #[serde(default)]
    pending_gradients: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainerState {
    format_version: u32,
    step: u64,
    cursor: DataCursor,
    optimizer_step: u64,
    loss_state: LossState,
    ganpo: Option<GanpoState>,
    /// With `[lora]` and `lora_dropout > 0`: the adapters' dropout generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lora_dropout: Option<DropoutRng>,
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Checkpoint(format!("{}: {e}", path.display())))?;
    std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

impl Trainer {
    /// Writes a complete checkpoint for the current step under `training.output_dir`, keeping the
    /// newest `save_total_limit`. Returns its path.
    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        let t = &self.config.training;
        save_atomically(&t.output_dir, self.step, t.save_total_limit, |dir| {
            self.save_policy(&dir.join("policy"))?;
            let optimizer_step = self
                .optimizer
                .save_state(&dir.join("optimizer.safetensors"))?;
            let ganpo = match &self.ganpo {
                None => None,
                Some(g) => {
                    g.plus.save(&dir.join("disc_chosen.safetensors"))?;
                    g.minus.save(&dir.join("disc_rejected.safetensors"))?;
                    let pending_gradients = !g.pending.is_empty();
                    if pending_gradients {
                        for (disc, file) in
                            [(&g.plus, PENDING_CHOSEN), (&g.minus, PENDING_REJECTED)]
                        {
                            let path = dir.join(file);
                            candle_core::safetensors::save(
                                &g.pending.named(&disc.named_vars()),
                                &path,
                            )
                            .map_err(|e| {
                                Error::Checkpoint(format!("writing {}: {e}", path.display()))
                            })?;
                        }
                    }
                    Some(GanpoState {
                        means: g.means.clone(),
                        plus_dropout: g.plus.dropout_rng(),
                        minus_dropout: g.minus.dropout_rng(),
                        plus_optimizer_step: g
                            .opt_plus
                            .save_state(&dir.join("disc_chosen_optimizer.safetensors"))?,
                        minus_optimizer_step: g
                            .opt_minus
                            .save_state(&dir.join("disc_rejected_optimizer.safetensors"))?,
                        pending_gradients,
                    })
                }
            };
            let state = TrainerState {
                format_version: FORMAT_VERSION,
                step: self.step,
                cursor: self.cursor,
                optimizer_step,
                loss_state: self.loss_state,
                ganpo,
                lora_dropout: self.policy.lora_dropout_rng()?,
            };
            write_json(&dir.join("trainer_state.json"), &state)?;
            std::fs::write(dir.join("config.toml"), self.config.to_toml())
                .map_err(|e| Error::io(format!("writing {}", dir.join("config.toml").display()), e))
        })
    }

    /// Rebuilds a run from checkpoint `dir` with `config` (which must describe the same run; only
    /// stopping, logging, evaluation and saving settings may change). Like [`Trainer::new`], its
    /// schedules are sized by [`Trainer::set_total_steps`].
    pub fn resume(config: TrainConfig, dir: &Path) -> Result<Self> {
        let state_path = dir.join("trainer_state.json");
        let text = std::fs::read_to_string(&state_path).map_err(|e| {
            Error::Checkpoint(format!("{} is not a ganpo checkpoint: {e}", dir.display()))
        })?;
        let version: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Checkpoint(format!("{}: {e}", state_path.display())))?;
        if version.get("format_version").and_then(|v| v.as_u64()) != Some(FORMAT_VERSION as u64) {
            return Err(Error::Checkpoint(format!(
                "{} has format version {}, this build reads {FORMAT_VERSION}",
                state_path.display(),
                version
                    .get("format_version")
                    .map_or("none".to_string(), |v| v.to_string())
            )));
        }
        let state: TrainerState = serde_json::from_value(version)
            .map_err(|e| Error::Checkpoint(format!("{}: {e}", state_path.display())))?;
        let saved_path = dir.join("config.toml");
        let saved = TrainConfig::load_saved(&saved_path)?;
        check_same_run(&saved, &config)?;
        let device = super::trainer::parse_device(&config.model.device)?;
        let policy = super::adapter::resume_policy(&config, dir, &device)?;
        // The checkpoint holds the discriminators: `init_from` needs no reading (or existing).
        let mut fresh = config.clone();
        if let Some(g) = fresh.ganpo.as_mut() {
            g.init_from = None;
        }
        let mut trainer = Trainer::assemble(
            fresh,
            policy.model,
            policy.tokenizer,
            policy.generation_config,
            device,
        )?;
        trainer.config = config;
        trainer
            .optimizer
            .load_state(&dir.join("optimizer.safetensors"), state.optimizer_step)?;
        trainer.step = state.step;
        trainer.cursor = state.cursor;
        trainer.loss_state = state.loss_state;
        if let Some(rng) = state.lora_dropout {
            trainer.policy.set_lora_dropout_rng(rng)?;
        }
        match (trainer.ganpo.as_mut(), state.ganpo) {
            (Some(g), Some(s)) => {
                let load = |name: &str| {
                    candle_core::safetensors::load(dir.join(name), &Device::Cpu)
                        .map_err(|e| Error::Checkpoint(format!("{name}: {e}")))
                };
                g.plus.set_tensors(&load("disc_chosen.safetensors")?)?;
                g.minus.set_tensors(&load("disc_rejected.safetensors")?)?;
                g.plus.set_dropout_rng(s.plus_dropout);
                g.minus.set_dropout_rng(s.minus_dropout);
                g.means = s.means;
                g.opt_plus.load_state(
                    &dir.join("disc_chosen_optimizer.safetensors"),
                    s.plus_optimizer_step,
                )?;
                g.opt_minus.load_state(
                    &dir.join("disc_rejected_optimizer.safetensors"),
                    s.minus_optimizer_step,
                )?;
                if s.pending_gradients {
                    let plus = load(PENDING_CHOSEN)?;
                    let minus = load(PENDING_REJECTED)?;
                    g.pending.add_named(&g.plus.named_vars(), &plus)?;
                    g.pending.add_named(&g.minus.named_vars(), &minus)?;
                }
            }
            (None, None) => {}
            _ => {
                return Err(Error::Checkpoint(
                    "the checkpoint and the config disagree on whether GANPO is on".into(),
                ));
            }
        }
        Ok(trainer)
    }
}

/// A resumed run must train the same thing the same way; only when to stop, log, evaluate and save
/// may change.
fn check_same_run(saved: &TrainConfig, now: &TrainConfig) -> Result<()> {
    let mut a = saved.clone();
    let mut b = now.clone();
    for c in [&mut a, &mut b] {
        let t = &mut c.training;
        t.output_dir = Default::default();
        t.max_steps = None;
        t.num_train_epochs = 0;
        t.logging_steps = 0;
        t.eval_steps = 0;
        t.save_steps = 0;
        t.save_total_limit = 0;
        t.overwrite_output_dir = false;
        t.per_device_eval_batch_size = None;
        c.data.eval_file = None;
    }
    if a != b {
        let changed: Vec<String> = crate::config::diff::differences(&a, &b)
            .iter()
            .map(ToString::to_string)
            .collect();
        return Err(Error::Checkpoint(format!(
            "the config changes {} (checkpoint → now); a resumed run may change only when to stop, log, evaluate and save; set those keys back (the checkpoint's config.toml holds its values)",
            changed.join(", ")
        )));
    }
    Ok(())
}
