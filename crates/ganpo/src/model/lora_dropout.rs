//! LoRA dropout (PEFT's `lora_dropout` on the adapter input) made reproducible: the masks come
//! from a seeded counter-based generator shared by a model's adapters (the one the
//! discriminators use, [`crate::ganpo::rng::DropoutRng`]), each adapter application drawing the
//! next mask, so its state is two integers saved in checkpoints and a resumed run is bit-exact.
//! Dropout is on only inside a training forward ([`CausalLm::lora_training`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use candle_core::Tensor;

use super::decoder::CausalLm;
use crate::ganpo::rng::DropoutRng;
use crate::{Error, Result};

/// The dropout shared by a model's adapters: on only inside a training forward
/// ([`CausalLm::lora_training`]); each adapter application draws the generator's next mask, so the
/// masks are a pure function of the seed and the number drawn (saved in checkpoints).
#[derive(Debug)]
pub struct LoraDropout {
    pub(super) p: f64,
    pub(super) rng: Mutex<DropoutRng>,
    pub(super) active: AtomicBool,
}

impl LoraDropout {
    /// `dropout(x)`: `x` itself when inactive, else `x ⊙ mask / (1 − p)`.
    pub(super) fn apply(&self, x: &Tensor) -> Result<Tensor> {
        if !self.active.load(Ordering::SeqCst) || self.p == 0.0 {
            return Ok(x.clone());
        }
        let draw = {
            let mut rng = self
                .rng
                .lock()
                .map_err(|_| Error::Training("LoRA dropout generator poisoned".into()))?;
            rng.draws = rng.draws.wrapping_add(1);
            *rng
        };
        let keep = (1.0 / (1.0 - self.p)) as f32;
        let factors = draw.keep_factors(draw.draws, x.elem_count(), self.p, keep);
        let mask = Tensor::from_vec(factors, x.shape(), x.device())?.to_dtype(x.dtype())?;
        Ok((x * mask)?)
    }
}

/// Guard of a training forward: adapter dropout is on while it lives.
#[derive(Debug)]
pub struct LoraTraining(Option<Arc<LoraDropout>>);

impl Drop for LoraTraining {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            d.active.store(false, Ordering::SeqCst);
        }
    }
}

impl CausalLm {
    /// Turns adapter dropout on until the guard drops: wrap the policy's training forwards in it.
    pub fn lora_training(&self) -> LoraTraining {
        let dropout = self.adapter_dropout();
        if let Some(d) = &dropout {
            d.active.store(true, Ordering::SeqCst);
        }
        LoraTraining(dropout)
    }

    /// The adapter dropout generator's state (saved with checkpoints), when dropout is on.
    pub fn lora_dropout_rng(&self) -> Result<Option<DropoutRng>> {
        self.adapter_dropout()
            .map(|d| {
                d.rng
                    .lock()
                    .map(|r| *r)
                    .map_err(|_| Error::Training("LoRA dropout generator poisoned".into()))
            })
            .transpose()
    }

    /// Restores the adapter dropout generator's state.
    pub fn set_lora_dropout_rng(&self, state: DropoutRng) -> Result<()> {
        if let Some(d) = self.adapter_dropout() {
            *d.rng
                .lock()
                .map_err(|_| Error::Training("LoRA dropout generator poisoned".into()))? = state;
        }
        Ok(())
    }

    fn adapter_dropout(&self) -> Option<Arc<LoraDropout>> {
        self.layers.iter().find_map(|layer| {
            layer
                .clone()
                .projections_mut()
                .into_iter()
                .find_map(|(_, l)| l.adapter().and_then(|a| a.dropout.clone()))
        })
    }
}
