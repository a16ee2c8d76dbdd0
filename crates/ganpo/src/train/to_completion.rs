//! One training run from its TOML text to the end, as `ganpo train` runs it: the config is written
//! next to the run (atomically), the output directory locked, the run resumed from its newest
//! checkpoint when asked and one exists, trained, then evaluated on its eval pairs. The demo's
//! arms and the study's arms both train through this.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::config::train::TrainConfig;
use crate::sysinfo::{peak_rss_mib, reset_peak_rss};
use crate::train::checkpoint_dir::{
    latest_checkpoint, remove_stale_temporaries, write_file_atomically,
};
use crate::train::metrics::Metrics;
use crate::train::run::RunOutcome;
use crate::train::run_lock::RunLock;
use crate::train::setup::RunSetup;
use crate::train::trainer::Trainer;
use crate::{Error, Result};

/// Where a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From the newest checkpoint in the output directory when there is one, else afresh.
    ResumeIfCheckpointed,
    /// Afresh, whatever the output directory holds.
    Afresh,
}

/// Where a run is, for a progress display.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Optimizer steps done.
    pub step: u64,
    /// The step this invocation started from (0 unless resumed).
    pub start: u64,
    /// Total optimizer steps of the run.
    pub total: u64,
    /// The step's metrics.
    pub metrics: &'a Metrics,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct CompletedRun {
    /// The final model's directory.
    pub final_dir: PathBuf,
    /// Metrics on the eval pairs after training (empty without `data.eval_file`).
    pub eval: Metrics,
    /// The last optimizer step's metrics.
    pub last_step: Metrics,
    /// Optimizer steps.
    pub steps: u64,
    /// Wall-clock seconds of this invocation (loading, training, evaluation).
    pub seconds: f64,
    /// The same up to the end of training (without the final evaluation).
    pub train_seconds: f64,
    /// The step it resumed from (`None`: trained from the start).
    pub resumed_from: Option<u64>,
    /// Peak resident memory of the process during this invocation, in MiB.
    pub peak_rss_mib: Option<f64>,
}

/// How [`train_to_completion`] ended.
#[derive(Debug)]
pub enum RunEnd {
    /// Trained to the end and evaluated.
    Finished(CompletedRun),
    /// Stopped by `stop` after writing a checkpoint, after this many seconds (rerun to continue).
    Interrupted {
        /// Wall-clock seconds this invocation ran.
        seconds: f64,
    },
}

/// Writes `config_text` to `config_path` and trains that run to the end (see the module docs).
/// `label` names the run in errors; `progress` is called once before the first step (with the
/// starting step and empty metrics, so a display can start its clock) and after every step.
pub fn train_to_completion(
    config_text: &str,
    config_path: &Path,
    label: &str,
    start: Start,
    stop: Arc<AtomicBool>,
    mut progress: impl FnMut(Progress),
) -> Result<RunEnd> {
    if let Some(dir) = config_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    write_file_atomically(config_path, config_text.as_bytes())?;
    let config = TrainConfig::from_toml(config_text, &[], &config_path.display().to_string())?;
    let out = config.training.output_dir.clone();
    std::fs::create_dir_all(&out)
        .map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
    let _lock = RunLock::acquire(&out)?;
    remove_stale_temporaries(&out)?;
    reset_peak_rss();
    let started = Instant::now();
    let latest = match start {
        Start::ResumeIfCheckpointed => latest_checkpoint(&out)?,
        Start::Afresh => None,
    };
    let trainer = match &latest {
        Some(dir) => Trainer::resume(config.clone(), dir).map_err(|e| {
            Error::Checkpoint(format!(
                "resuming {label} from {}: {e}; delete {} to train it afresh",
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
    let first = trainer.step;
    let mut last_step = Metrics::new();
    progress(Progress {
        step: first,
        start: first,
        total,
        metrics: &last_step,
    });
    let outcome = trainer.run(&train, None, &mut log, stop, |step, _, metrics| {
        progress(Progress {
            step,
            start: first,
            total,
            metrics,
        });
        last_step = metrics.clone();
    })?;
    let train_seconds = started.elapsed().as_secs_f64();
    let final_dir = match outcome {
        RunOutcome::Interrupted { .. } => {
            return Ok(RunEnd::Interrupted {
                seconds: train_seconds,
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
    Ok(RunEnd::Finished(CompletedRun {
        final_dir,
        eval,
        last_step,
        steps: trainer.step,
        seconds: started.elapsed().as_secs_f64(),
        train_seconds,
        resumed_from,
        peak_rss_mib: peak_rss_mib(),
    }))
}
