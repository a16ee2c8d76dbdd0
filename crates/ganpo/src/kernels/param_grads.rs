//! Where the fused ops that run whole blocks leave their parameters' gradients during a backward
//! pass: a decoder layer's halves ([`super::attention_block`], [`super::mlp_block`]) and the
//! discriminator's encoder stack ([`super::encoder`]).
//!
//! Such an op takes only its activation input as a candle input (candle's custom ops have at most
//! three, and every input edge costs the backward pass a zero-filled buffer and an addition). Its
//! parameters are constants of the op; their gradients are written once, straight from the kernel,
//! into this store, which the owner drains into the pass's `GradStore`
//! ([`crate::model::CausalLm::backward`], [`crate::ganpo::Discriminator::take_grads`]).

use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::Tensor;
use candle_core::backprop::GradStore;

use crate::{Error, Result};

/// `(parameter, gradient)` pairs left by fused blocks, one per parameter and backward pass through
/// the block, waiting to be summed into a `GradStore`.
#[derive(Debug, Clone, Default)]
pub struct ParamGrads(Arc<Mutex<Vec<(Tensor, Tensor)>>>);

impl ParamGrads {
    fn lock(&self) -> Result<MutexGuard<'_, Vec<(Tensor, Tensor)>>> {
        self.0
            .lock()
            .map_err(|_| Error::Training("parameter-gradient store poisoned".into()))
    }

    /// Adds the gradients of one backward pass through a block: each parameter's flat f32
    /// gradient (none for a parameter that is not trained), shaped as the parameter.
    pub(crate) fn push_flat(
        &self,
        params: &[Tensor],
        grads: impl IntoIterator<Item = Option<Vec<f32>>>,
    ) -> candle_core::Result<()> {
        let mut sunk = Vec::new();
        for (param, grad) in params.iter().zip(grads) {
            if let Some(grad) = grad {
                let grad = Tensor::from_vec(grad, param.shape(), param.device())?;
                sunk.push((param.clone(), grad));
            }
        }
        self.lock()
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?
            .extend(sunk);
        Ok(())
    }

    /// How many gradients wait to be drained.
    pub fn pending(&self) -> Result<usize> {
        Ok(self.lock()?.len())
    }

    /// Drops everything stored (left by a backward pass whose gradients were never collected).
    pub fn clear(&self) -> Result<()> {
        self.lock()?.clear();
        Ok(())
    }

    /// Moves everything stored into `grads`, summing with the gradients already there.
    pub fn drain_into(&self, grads: &mut GradStore) -> Result<()> {
        let pending = std::mem::take(&mut *self.lock()?);
        for (param, grad) in pending {
            let sum = match grads.get(&param) {
                Some(earlier) => (earlier + grad)?,
                None => grad,
            };
            grads.insert(&param, sum);
        }
        Ok(())
    }
}
