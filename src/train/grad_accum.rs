//! Gradient accumulation across micro-batches. Each micro-batch loss is scaled by its share of the
//! batch before its backward pass, and the resulting gradients are summed here, so k micro-batches
//! of B/k give the gradient of one batch of B.

use candle_core::backprop::GradStore;

use crate::Result;

/// Summed gradients of the micro-batches seen since the last [`GradAccumulator::take`].
#[derive(Debug, Default)]
pub struct GradAccumulator {
    sum: Option<GradStore>,
}

impl GradAccumulator {
    /// Adds one micro-batch's gradients (candle's backward keeps only the variables' gradients).
    pub fn add(&mut self, grads: GradStore) -> Result<()> {
        match &mut self.sum {
            Some(sum) => sum.extend(grads)?,
            None => self.sum = Some(grads),
        }
        Ok(())
    }

    /// The summed gradients (an empty store if nothing was added), and resets.
    pub fn take(&mut self) -> GradStore {
        self.sum.take().unwrap_or_default()
    }
}
