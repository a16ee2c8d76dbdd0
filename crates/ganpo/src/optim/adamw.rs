//! AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019) as PyTorch's
//! `torch.optim.AdamW` computes it, with first and second moments that can be saved and restored.
//!
//! For each parameter p with gradient g at step t (1-based):
//! ```text
//! p ← p − lr·λ·p                                  (decoupled weight decay, skipped for biases and norms)
//! m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
//! p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
//! ```

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var, backprop::GradStore};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, kernels};

/// AdamW hyper-parameters (TRL / transformers names and defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// β₁, the first-moment decay (`adam_beta1`).
    pub adam_beta1: f64,
    /// β₂, the second-moment decay (`adam_beta2`).
    pub adam_beta2: f64,
    /// ε added to the denominator (`adam_epsilon`).
    pub adam_epsilon: f64,
    /// Decoupled weight decay λ (`weight_decay`).
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Whether a parameter is exempt from weight decay: biases and normalization weights, as the
/// transformers `Trainer` does (`get_decay_parameter_names`).
pub fn excluded_from_weight_decay(name: &str) -> bool {
    name.ends_with(".bias") || name.ends_with("bias") || name.contains("norm")
}

struct Slot {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

/// AdamW over a fixed, named set of variables.
pub struct AdamW {
    config: AdamWConfig,
    slots: Vec<Slot>,
    step: u64,
}

impl std::fmt::Debug for AdamW {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdamW")
            .field("config", &self.config)
            .field("params", &self.slots.len())
            .field("step", &self.step)
            .finish()
    }
}

impl AdamW {
    /// An optimizer for `vars` (name, variable), with zero moments.
    pub fn new(vars: &[(String, Var)], config: AdamWConfig) -> Result<Self> {
        let slots = vars
            .iter()
            .map(|(name, var)| {
                // Two buffers: the moments are updated in place.
                let zeros = || var.as_tensor().zeros_like()?.to_dtype(DType::F32);
                Ok(Slot {
                    name: name.clone(),
                    var: var.clone(),
                    m: zeros()?,
                    v: zeros()?,
                    decay: !excluded_from_weight_decay(name),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            config,
            slots,
            step: 0,
        })
    }

    /// Decays every parameter, biases and norms included (torch's `AdamW(model.parameters())`, as
    /// the authors' discriminator optimizers), instead of the transformers `Trainer` exemptions.
    pub fn decaying_every_parameter(mut self) -> Self {
        for slot in &mut self.slots {
            slot.decay = true;
        }
        self
    }

    /// Number of completed steps.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Applies one update with learning rate `lr`. Variables without a gradient in `grads` are left
    /// untouched (their moments do not advance), as PyTorch skips parameters whose `.grad` is None.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let c = self.config;
        let bias1 = 1.0 - c.adam_beta1.powi(t);
        let bias2_sqrt = (1.0 - c.adam_beta2.powi(t)).sqrt();
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let g = g.to_dtype(DType::F32)?;
            let fused = kernels::AdamWStep {
                beta1: c.adam_beta1,
                beta2: c.adam_beta2,
                eps: c.adam_epsilon,
                lr,
                bias1,
                bias2_sqrt,
                decay_factor: if slot.decay && c.weight_decay != 0.0 {
                    1.0 - lr * c.weight_decay
                } else {
                    1.0
                },
            };
            let p = slot.var.as_tensor();
            if kernels::adamw_step(p, &slot.m, &slot.v, &g, fused)? {
                continue;
            }
            let mut p = p.detach().to_dtype(DType::F32)?;
            if slot.decay && c.weight_decay != 0.0 {
                p = (&p * (1.0 - lr * c.weight_decay))?;
            }
            slot.m = ((&slot.m * c.adam_beta1)? + (&g * (1.0 - c.adam_beta1))?)?;
            slot.v = ((&slot.v * c.adam_beta2)? + (g.sqr()? * (1.0 - c.adam_beta2))?)?;
            let denom = ((slot.v.sqrt()? / bias2_sqrt)? + c.adam_epsilon)?;
            let update = ((&slot.m / denom)? * (lr / bias1))?;
            let new = (p - update)?.to_dtype(slot.var.dtype())?;
            slot.var.set(&new)?;
        }
        Ok(())
    }

    /// Writes the moments to `path` (safetensors, keys `m.<name>` / `v.<name>`) and returns the step
    /// count, which the caller stores with the rest of the training state.
    pub fn save_state(&self, path: &Path) -> Result<u64> {
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for slot in &self.slots {
            tensors.insert(format!("m.{}", slot.name), slot.m.to_device(&Device::Cpu)?);
            tensors.insert(format!("v.{}", slot.name), slot.v.to_device(&Device::Cpu)?);
        }
        candle_core::safetensors::save(&tensors, path).map_err(|e| {
            Error::Checkpoint(format!(
                "cannot write optimizer state {}: {e}",
                path.display()
            ))
        })?;
        Ok(self.step)
    }

    /// Restores moments saved by [`AdamW::save_state`] and the step count. Every parameter must be
    /// present with the same shape.
    pub fn load_state(&mut self, path: &Path, step: u64) -> Result<()> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
            Error::Checkpoint(format!(
                "cannot read optimizer state {}: {e}",
                path.display()
            ))
        })?;
        for slot in &mut self.slots {
            let device = slot.var.device().clone();
            for (key, target) in [("m", &mut slot.m), ("v", &mut slot.v)] {
                let name = format!("{key}.{}", slot.name);
                let t = tensors.get(&name).ok_or_else(|| {
                    Error::Checkpoint(format!(
                        "optimizer state {} has no `{name}`; was it saved for another model?",
                        path.display()
                    ))
                })?;
                if t.dims() != slot.var.dims() {
                    return Err(Error::Checkpoint(format!(
                        "optimizer state `{name}` has shape {:?}, parameter has {:?}",
                        t.dims(),
                        slot.var.dims()
                    )));
                }
                // A copy of its own: the moments are updated in place.
                *target = t.to_dtype(DType::F32)?.to_device(&device)?.copy()?;
            }
        }
        self.step = step;
        Ok(())
    }
}
