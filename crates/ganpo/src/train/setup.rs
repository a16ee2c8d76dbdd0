//! Run setup, written once for `ganpo train`, the demo's arms and the tests: the output directory
//! checked, a trainer (fresh or resumed) → its datasets, checked against the models' position
//! limits → the run's length → schedules sized → the metrics log in `output_dir`.

use std::path::Path;

use crate::config::train::TrainConfig;
use crate::data::PreferenceDataset;
use crate::train::metrics::MetricsLog;
use crate::train::position_limits::check_position_limits;
use crate::train::trainer::Trainer;
use crate::{Error, Result};

/// A run ready to train: the trainer with its schedules sized, the data, the length.
pub struct RunSetup {
    /// The trainer (its config is the run's).
    pub trainer: Trainer,
    /// The training pairs.
    pub train: PreferenceDataset,
    /// The evaluation pairs, when `data.eval_file` is set.
    pub eval: Option<PreferenceDataset>,
    /// Optimizer steps of the whole run ([`total_steps`]).
    pub total_steps: u64,
}

impl RunSetup {
    /// A fresh run of `config` ([`Trainer::new`], then [`RunSetup::around`]).
    pub fn new(config: &TrainConfig) -> Result<Self> {
        Self::around(Trainer::new(config.clone())?)
    }

    /// The run of a built (or resumed, [`Trainer::resume`]) trainer: loads the datasets its config
    /// names and sizes its schedules for the run's length.
    pub fn around(mut trainer: Trainer) -> Result<Self> {
        let (train, eval) = load_datasets(&trainer.config, &trainer)?;
        let total_steps = total_steps(&trainer.config, train.pairs.len());
        trainer.set_total_steps(total_steps);
        Ok(RunSetup {
            trainer,
            train,
            eval,
            total_steps,
        })
    }

    /// Creates `output_dir` and opens its `metrics.jsonl` with the config as the first line; a
    /// `resumed` run keeps the lines up to the trainer's step ([`MetricsLog::open`]).
    pub fn open_log(&self, resumed: bool) -> Result<MetricsLog> {
        let config = &self.trainer.config;
        let dir = &config.training.output_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let config_json = serde_json::to_value(config)
            .map_err(|e| Error::Config(format!("serializing the run's config: {e}")))?;
        MetricsLog::open(
            &dir.join("metrics.jsonl"),
            &config_json,
            resumed.then_some(self.trainer.step),
        )
    }
}

/// Number of optimizer steps for `pairs` training pairs.
pub fn total_steps(config: &TrainConfig, pairs: usize) -> u64 {
    let t = &config.training;
    // Validation bounds the product; saturating keeps an unvalidated config from panicking.
    let per_step = t
        .per_device_train_batch_size
        .saturating_mul(t.gradient_accumulation_steps)
        .max(1);
    let per_epoch = pairs.div_ceil(per_step) as u64;
    t.max_steps
        .unwrap_or(per_epoch.saturating_mul(t.num_train_epochs as u64))
}

/// Refuses to write into a non-empty output directory unless allowed or resuming.
pub fn check_output_dir(config: &TrainConfig, resuming: bool) -> Result<()> {
    let dir = &config.training.output_dir;
    // The lock and temporaries of an earlier (killed) run are not output.
    let non_empty = dir
        .read_dir()
        .map(|d| {
            d.filter_map(std::result::Result::ok).any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name != crate::train::run_lock::LOCK_FILE && !name.starts_with(".tmp-")
            })
        })
        .unwrap_or(false);
    if non_empty && !resuming && !config.training.overwrite_output_dir {
        return Err(Error::Config(format!(
            "output_dir {} exists and is not empty; pass --resume {}/checkpoint-N to continue, choose another output_dir, or set training.overwrite_output_dir = true",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Loads the datasets a config names, reporting what was dropped, and checks every kept sequence
/// against the models' position limits.
pub fn load_datasets(
    config: &TrainConfig,
    trainer: &Trainer,
) -> Result<(PreferenceDataset, Option<PreferenceDataset>)> {
    let data = config.data.data_config();
    let train = PreferenceDataset::load(&config.data.train_file, &trainer.tokenizer, &data)?;
    let eval = config
        .data
        .eval_file
        .as_deref()
        .map(|p: &Path| PreferenceDataset::load(p, &trainer.tokenizer, &data))
        .transpose()?;
    for dataset in std::iter::once(&train).chain(eval.as_ref()) {
        check_position_limits(trainer, dataset)?;
    }
    Ok((train, eval))
}
