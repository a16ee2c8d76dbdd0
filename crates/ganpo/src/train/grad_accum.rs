//! Gradient accumulation across micro-batches. Each micro-batch loss is scaled by its share of the
//! batch before its backward pass, and the resulting gradients are summed here, so k micro-batches
//! of B/k give the gradient of one batch of B.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::{Error, Result};

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

impl GradAccumulator {
    /// Whether nothing was added since the last take.
    pub fn is_empty(&self) -> bool {
        self.sum.is_none()
    }

    /// The summed gradients of `vars` that are present, by name (to save them in a checkpoint).
    pub fn named(&self, vars: &[(String, Var)]) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        if let Some(sum) = &self.sum {
            for (name, var) in vars {
                if let Some(g) = sum.get(var.as_tensor()) {
                    out.insert(name.clone(), g.clone());
                }
            }
        }
        out
    }

    /// Adds gradients saved by [`GradAccumulator::named`] for `vars`; a name that is not one of
    /// `vars`, or a shape that differs from its variable's, is an error naming it.
    pub fn add_named(
        &mut self,
        vars: &[(String, Var)],
        named: &HashMap<String, Tensor>,
    ) -> Result<()> {
        let mut store = GradStore::default();
        for (name, grad) in named {
            let var = vars
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .ok_or_else(|| {
                    Error::Checkpoint(format!("pending gradient of unknown parameter `{name}`"))
                })?;
            if grad.dims() != var.dims() {
                return Err(Error::Checkpoint(format!(
                    "pending gradient `{name}` has shape {:?}, the parameter {:?}",
                    grad.dims(),
                    var.dims()
                )));
            }
            let grad = grad.to_dtype(var.dtype())?.to_device(var.device())?;
            store.insert(var.as_tensor(), grad);
        }
        if !named.is_empty() {
            self.add(store)?;
        }
        Ok(())
    }
}
