//! Training one arm through the ordinary `ganpo train` code path, from a generated TOML config,
//! checkpointing every few steps and resuming from the newest checkpoint when an earlier
//! (interrupted) run left one. A general, resumable version of the demo's `train_arm`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use ganpo::config::train::TrainConfig;
use ganpo::sysinfo::{peak_rss_mib, reset_peak_rss};
use ganpo::train::checkpoint_dir::{
    latest_checkpoint, list_checkpoints, remove_stale_temporaries, write_file_atomically,
};
use ganpo::train::metrics::Metrics;
use ganpo::train::run::RunOutcome;
use ganpo::train::run_lock::RunLock;
use ganpo::train::setup::RunSetup;
use ganpo::train::trainer::Trainer;
use ganpo::{Error, Result};
use serde::{Deserialize, Serialize};

use super::config::{StudyArm, StudyConfig};
use super::progress::Bar;

/// The data files and output directory of one arm's run.
#[derive(Debug, Clone)]
pub struct ArmPaths {
    /// Training pairs (JSONL).
    pub train: PathBuf,
    /// Validation pairs (JSONL).
    pub validation: PathBuf,
    /// The run's `training.output_dir`.
    pub run_dir: PathBuf,
}

/// The TOML config of `arm` (absolute paths, so it can be rerun from anywhere with `ganpo train`).
pub fn arm_config(arm: &StudyArm, config: &StudyConfig, paths: &ArmPaths, seed: u64) -> String {
    let objective = if arm.loss == "simpo" {
        format!(
            "type = \"simpo\"\nbeta = {:?}\ngamma_beta_ratio = 0.5",
            arm.beta
        )
    } else {
        format!("type = \"sigmoid\"\nbeta = {:?}", arm.beta)
    };
    let ganpo = match arm.lambda {
        Some(lambda) => format!(
            "[ganpo]\nlambda = {lambda:?}\nseed = {seed}\n[ganpo.discriminator]\nwidth = 64\ndepth = 1\nheads = 4\ndropout = 0.1\nmax_positions = 256\n"
        ),
        None => String::new(),
    };
    let max_length = config.max_prompt_tokens + config.pair_max_new_tokens + 64;
    format!(
        "[model]\npath = {model:?}\n\n[data]\ntrain_file = {train:?}\neval_file = {eval:?}\nmax_length = {max_length}\nmax_prompt_length = {max_prompt}\n\n\
         [loss.objective]\n{objective}\n\n{ganpo}\n[training]\noutput_dir = {out:?}\noverwrite_output_dir = true\n\
         num_train_epochs = {epochs}\nper_device_train_batch_size = {batch}\nlearning_rate = {lr:?}\nlr_scheduler_type = \"cosine\"\n\
         warmup_ratio = 0.1\nseed = {seed}\nlogging_steps = 1\nsave_steps = {save}\nsave_total_limit = 1\n",
        model = config.model.display().to_string(),
        train = paths.train.display().to_string(),
        eval = paths.validation.display().to_string(),
        max_prompt = config.max_prompt_tokens + 48,
        out = paths.run_dir.display().to_string(),
        epochs = config.epochs,
        batch = config.train_batch_size,
        lr = config.learning_rate,
        save = config.save_steps,
    )
}

/// What training one arm produced (saved as the arm's `train.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArmTraining {
    /// Held-out (validation-pair) preference metrics after training.
    pub eval: Metrics,
    /// Optimizer steps.
    pub steps: u64,
    /// Wall-clock seconds of training, summed over the invocations that trained it (the time of
    /// one killed outright, without Ctrl-C, is not counted).
    pub seconds: f64,
    /// Step the run resumed from (`None`: trained from the start).
    pub resumed_from: Option<u64>,
    /// Peak resident memory of the process during training, in MiB.
    pub peak_rss_mib: Option<f64>,
}

/// How [`train_run`] ended.
#[derive(Debug)]
pub enum TrainOutcome {
    /// Trained to the end: the final model's directory and the run's record.
    Finished(PathBuf, ArmTraining),
    /// Stopped by Ctrl-C after writing a checkpoint, after this many seconds.
    Interrupted {
        /// Wall-clock seconds this invocation trained.
        seconds: f64,
    },
}

/// Trains the run `config_text` describes to completion (resuming from the newest checkpoint in
/// its output directory, if any), evaluates it on its eval pairs and returns the final model's
/// directory; when `stop` is raised it writes a checkpoint and returns `Interrupted` (rerun to
/// continue).
pub fn train_run(
    config_text: &str,
    config_path: &Path,
    label: &str,
    stop: Arc<AtomicBool>,
) -> Result<TrainOutcome> {
    if let Some(dir) = config_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    write_file_atomically(config_path, config_text.as_bytes())?;
    let config = TrainConfig::from_toml(config_text, &[], &config_path.display().to_string())?;
    let out = config.training.output_dir.clone();
    let _lock = RunLock::acquire(&out)?;
    remove_stale_temporaries(&out)?;
    reset_peak_rss();
    let started = Instant::now();
    let latest = latest_checkpoint(&out)?;
    let trainer = match &latest {
        Some(dir) => Trainer::resume(config.clone(), dir).map_err(|e| {
            Error::Checkpoint(format!(
                "resuming {label} from {}: {e}; delete {} to train this arm afresh",
                dir.display(),
                out.display()
            ))
        })?,
        None => Trainer::new(config.clone())?,
    };
    let resumed_from = latest.as_ref().map(|_| trainer.step);
    let setup = RunSetup::around(trainer)?;
    let total = setup.total_steps;
    let mut log = setup.open_log(resumed_from.is_some())?;
    let RunSetup {
        mut trainer,
        train,
        eval,
        ..
    } = setup;
    let mut bar = Bar::new(format!("training {label}"), total, "steps");
    let start = trainer.step;
    let outcome = trainer.run(&train, None, &mut log, stop, |step, _, _| {
        bar.set(step, start)
    })?;
    bar.finish();
    let final_dir = match outcome {
        RunOutcome::Interrupted { .. } => {
            return Ok(TrainOutcome::Interrupted {
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        RunOutcome::Finished { final_model, .. } => final_model,
    };
    let eval = match eval {
        Some(e) => {
            let m = trainer.evaluate(&e.pairs)?;
            log.log(trainer.step, config.training.num_train_epochs as f64, &m)?;
            m
        }
        None => Metrics::new(),
    };
    Ok(TrainOutcome::Finished(
        final_dir,
        ArmTraining {
            eval,
            steps: trainer.step,
            seconds: started.elapsed().as_secs_f64(),
            resumed_from,
            peak_rss_mib: peak_rss_mib(),
        },
    ))
}

/// Deletes a finished run's checkpoints (its final model and metrics stay).
pub fn remove_checkpoints(run_dir: &Path) -> Result<()> {
    for (_, dir) in list_checkpoints(run_dir)? {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
    }
    Ok(())
}
