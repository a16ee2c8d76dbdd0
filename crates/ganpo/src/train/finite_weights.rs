//! A last check before anything is saved: every policy and discriminator weight is finite. An
//! update can turn weights into NaN or infinity (e.g. `adam_epsilon = 1e-45`) while the loss of
//! that step was still finite; saving them would publish a broken checkpoint or final model.

use candle_core::{DType, Tensor};

use crate::train::trainer::Trainer;
use crate::{Error, Result};

/// Whether every element of `t` is finite: `t − t` is 0 exactly where `t` is finite, NaN elsewhere.
fn all_finite(t: &Tensor) -> Result<bool> {
    let d = t.sub(t)?.to_dtype(DType::F32)?.sum_all()?;
    Ok(d.to_scalar::<f32>()? == 0.0)
}

impl Trainer {
    /// Fails (naming the first bad weight) when a policy or discriminator weight is not finite.
    pub fn check_finite_weights(&self) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = self
            .policy
            .vars()
            .iter()
            .map(|(n, v)| (format!("policy {n}"), v.as_tensor().clone()))
            .collect();
        if let Some(g) = &self.ganpo {
            for (which, disc) in [("chosen", &g.plus), ("rejected", &g.minus)] {
                named.extend(disc.named_vars().into_iter().map(|(n, v)| {
                    (
                        format!("discriminator ({which}) {n}"),
                        v.as_tensor().clone(),
                    )
                }));
            }
        }
        for (name, t) in &named {
            if !all_finite(t)? {
                return Err(Error::Training(format!(
                    "after optimizer step {} the {name} weights hold NaN or infinite values; nothing was saved for this step. Lower training.learning_rate, keep optimizer.adam_epsilon near 1e-8, or set training.max_grad_norm, then resume from the last checkpoint",
                    self.step
                )));
            }
        }
        Ok(())
    }
}
