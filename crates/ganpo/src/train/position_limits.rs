//! Every kept sequence is checked against the positions the models can take — the policy's and the
//! reference's `max_position_embeddings` and the discriminators' `max_positions` — right after
//! the data is loaded, so that a long record fails before step 1 with its `file:line`, not when its
//! batch comes up after hours of training.

use crate::data::{PositionLimit, PreferenceDataset};
use crate::train::trainer::Trainer;
use crate::{Error, Result};

/// The run's position limits, each with the key that sets it.
pub fn position_limits(trainer: &Trainer) -> Vec<PositionLimit> {
    let mut out = vec![PositionLimit {
        positions: trainer.policy.config().max_position_embeddings,
        what: "the policy's max_position_embeddings (model.path)".into(),
    }];
    if let Some(r) = &trainer.reference {
        out.push(PositionLimit {
            positions: r.config().max_position_embeddings,
            what: "the reference's max_position_embeddings (model.reference)".into(),
        });
    }
    if let Some(g) = &trainer.config.ganpo {
        out.push(PositionLimit {
            positions: g.discriminator.max_positions,
            what: "ganpo.discriminator.max_positions".into(),
        });
    }
    out
}

/// Fails on the first pair of `dataset` (in file order) with a sequence longer than a limit.
pub fn check_position_limits(trainer: &Trainer, dataset: &PreferenceDataset) -> Result<()> {
    let limits = position_limits(trainer);
    for pair in &dataset.pairs {
        for (name, seq) in [("chosen", &pair.chosen), ("rejected", &pair.rejected)] {
            let len = seq.input_ids.len();
            if let Some(l) = limits.iter().find(|l| len > l.positions) {
                let raise = if l.what.starts_with("ganpo.") {
                    ", or raise ganpo.discriminator.max_positions"
                } else {
                    ""
                };
                return Err(Error::data(
                    &pair.location,
                    format!(
                        "prompt + {name} is {len} tokens after truncation, more than {} ({}); set data.max_length to at most {}{raise}",
                        l.what, l.positions, l.positions
                    ),
                ));
            }
        }
    }
    Ok(())
}
