//! Run setup, written once for `ganpo train`, the demo's arms and the tests: a trainer (fresh or
//! resumed) → its datasets, checked against the models' position limits → the run's length →
//! schedules sized → the metrics log in `output_dir`.

use crate::config::train::TrainConfig;
use crate::data::PreferenceDataset;
use crate::train::metrics::MetricsLog;
use crate::train::run::{load_datasets, total_steps};
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
