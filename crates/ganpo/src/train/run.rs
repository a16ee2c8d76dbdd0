//! The outer loop: data order and batching, epochs, gradient accumulation, schedule position,
//! periodic evaluation, logging, checkpoints, Ctrl-C and the final model.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::data::{Batch, BatchTensors, PreferenceDataset, TokenizedPair};
use crate::train::checkpoint_dir::publish_dir;
use crate::train::data_order::epoch_order;
use crate::train::metrics::{Metrics, MetricsAverager, MetricsLog};
use crate::train::setup::total_steps;
use crate::train::trainer::Trainer;
use crate::{Error, Result};

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// All steps done; the final policy is in `final_model`.
    Finished {
        /// The last checkpoint.
        checkpoint: PathBuf,
        /// `output_dir/final`: the trained policy in Hugging Face layout.
        final_model: PathBuf,
    },
    /// Interrupted (Ctrl-C); a checkpoint was written.
    Interrupted {
        /// The checkpoint to `--resume` from.
        checkpoint: PathBuf,
    },
}

/// Collates `pairs` into micro-batches of `size` on the trainer's device.
fn micro_batches(
    trainer: &Trainer,
    pairs: &[&TokenizedPair],
    size: usize,
) -> Result<Vec<BatchTensors>> {
    pairs
        .chunks(size.max(1))
        .map(|chunk| {
            Batch::collate(chunk.iter().copied(), trainer.tokenizer.pad_id())?
                .to_tensors(&trainer.device)
        })
        .collect()
}

impl Trainer {
    /// Saves a checkpoint after checking that every weight is finite.
    fn save_checked(&self) -> Result<PathBuf> {
        self.check_finite_weights()?;
        self.save_checkpoint()
    }

    /// Trains on `train` until the configured number of steps, logging to `log`, evaluating on
    /// `eval`, checkpointing, and stopping cleanly (with a checkpoint) when `stop` is raised.
    pub fn run(
        &mut self,
        train: &PreferenceDataset,
        eval: Option<&PreferenceDataset>,
        log: &mut MetricsLog,
        stop: Arc<AtomicBool>,
        mut progress: impl FnMut(u64, u64, &Metrics),
    ) -> Result<RunOutcome> {
        let t = self.config.training.clone();
        let n = train.pairs.len();
        let total = total_steps(&self.config, n);
        let per_step = t
            .per_device_train_batch_size
            .saturating_mul(t.gradient_accumulation_steps)
            .max(1);
        if self.cursor.position > n {
            return Err(Error::Training(format!(
                "the checkpoint's data cursor (pair {} of epoch {}) is past the end of {} ({n} pairs): the training data changed since the checkpoint; resume with the data it was trained on",
                self.cursor.position,
                self.cursor.epoch,
                self.config.data.train_file.display()
            )));
        }
        let mut averager = MetricsAverager::default();
        let mut order_epoch = u64::MAX;
        let mut order = Vec::new();
        while self.step < total {
            if self.cursor.position >= n {
                self.cursor.epoch += 1;
                self.cursor.position = 0;
            }
            if order_epoch != self.cursor.epoch {
                order = epoch_order(n, t.seed, self.cursor.epoch, t.shuffle);
                order_epoch = self.cursor.epoch;
            }
            let end = (self.cursor.position + per_step).min(n);
            let pairs: Vec<&TokenizedPair> = order[self.cursor.position..end]
                .iter()
                .map(|&i| &train.pairs[i])
                .collect();
            let batches = micro_batches(self, &pairs, t.per_device_train_batch_size)?;
            let logging = t.logging_steps > 0 && (self.step + 1).is_multiple_of(t.logging_steps);
            let metrics = self.train_step(&batches, logging)?;
            self.cursor.position = end;
            averager.add(&metrics);
            let epoch = self.cursor.epoch as f64 + self.cursor.position as f64 / n as f64;
            progress(self.step, total, &metrics);
            if logging || self.step == total {
                log.log(self.step, epoch, &averager.take())?;
            }
            if let Some(eval) =
                eval.filter(|_| t.eval_steps > 0 && self.step.is_multiple_of(t.eval_steps))
            {
                let m = self.evaluate(&eval.pairs)?;
                log.log(self.step, epoch, &m)?;
            }
            if t.save_steps > 0 && self.step.is_multiple_of(t.save_steps) && self.step < total {
                self.save_checked()?;
            }
            if stop.load(Ordering::SeqCst) {
                return Ok(RunOutcome::Interrupted {
                    checkpoint: self.save_checked()?,
                });
            }
        }
        let evaluated_now = t.eval_steps > 0 && self.step.is_multiple_of(t.eval_steps);
        if let Some(eval) = eval.filter(|_| !evaluated_now) {
            let m = self.evaluate(&eval.pairs)?;
            let epoch = self.cursor.epoch as f64 + self.cursor.position as f64 / n.max(1) as f64;
            log.log(self.step, epoch, &m)?;
        }
        let checkpoint = self.save_checked()?;
        let final_model = publish_dir(&t.output_dir, "final", |dir| self.save_policy(dir))?;
        Ok(RunOutcome::Finished {
            checkpoint,
            final_model,
        })
    }
}
