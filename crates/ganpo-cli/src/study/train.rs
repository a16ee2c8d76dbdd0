//! Training one arm through the ordinary `ganpo train` code path, from a generated TOML config,
//! checkpointing every few steps and resuming from the newest checkpoint when an earlier
//! (interrupted) run left one ([`ganpo::train::to_completion`], which the demo's arms use too).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use ganpo::train::checkpoint_dir::list_checkpoints;
use ganpo::train::metrics::Metrics;
use ganpo::train::to_completion::{RunEnd, Start, train_to_completion};
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

/// Trains the run `config_text` describes to completion through
/// [`ganpo::train::to_completion`], resuming from the newest checkpoint in its output directory,
/// with a progress bar; when `stop` is raised it writes a checkpoint and returns `Interrupted`
/// (rerun to continue).
pub fn train_run(
    config_text: &str,
    config_path: &Path,
    label: &str,
    stop: Arc<AtomicBool>,
) -> Result<TrainOutcome> {
    let mut bar: Option<Bar> = None;
    let end = train_to_completion(
        config_text,
        config_path,
        label,
        Start::ResumeIfCheckpointed,
        stop,
        |p| {
            let bar =
                bar.get_or_insert_with(|| Bar::new(format!("training {label}"), p.total, "steps"));
            if p.step > p.start {
                bar.set(p.step, p.start);
            }
        },
    )?;
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok(match end {
        RunEnd::Interrupted { seconds } => TrainOutcome::Interrupted { seconds },
        RunEnd::Finished(run) => TrainOutcome::Finished(
            run.final_dir,
            ArmTraining {
                eval: run.eval,
                steps: run.steps,
                seconds: run.seconds,
                resumed_from: run.resumed_from,
                peak_rss_mib: run.peak_rss_mib,
            },
        ),
    })
}

/// Deletes a finished run's checkpoints (its final model and metrics stay).
pub fn remove_checkpoints(run_dir: &Path) -> Result<()> {
    for (_, dir) in list_checkpoints(run_dir)? {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
    }
    Ok(())
}
