//! Preference losses: golden values, rewards and gradients against TRL / reference transcriptions
//! (`golden.rs`), invariants (`invariants.rs`), input handling (`inputs.rs`),
//! the shared numerics (`numerics.rs`) and configuration parsing (`config.rs`).

mod common;
#[path = "losses/config.rs"]
mod config;
#[path = "losses/golden.rs"]
mod golden;
#[path = "losses/inputs.rs"]
mod inputs;
#[path = "losses/invariants.rs"]
mod invariants;
#[path = "losses/numerics.rs"]
mod numerics;

use candle_core::{DType, Device, Tensor, Var};
use ganpo::losses::{LossConfig, LossInputs, LossOutput, LossState};

/// A `[n]` tensor of `dtype` on the CPU.
pub fn vector(values: &[f64], dtype: DType) -> Tensor {
    Tensor::new(values, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// One batch of per-pair values (f64 on the host; built into tensors of any dtype).
#[derive(Debug, Clone)]
pub struct Pairs {
    pub policy_chosen: Vec<f64>,
    pub policy_rejected: Vec<f64>,
    pub ref_chosen: Vec<f64>,
    pub ref_rejected: Vec<f64>,
    pub chosen_counts: Vec<f64>,
    pub rejected_counts: Vec<f64>,
}

impl Pairs {
    /// The batch with chosen and rejected swapped.
    pub fn swapped(&self) -> Pairs {
        Pairs {
            policy_chosen: self.policy_rejected.clone(),
            policy_rejected: self.policy_chosen.clone(),
            ref_chosen: self.ref_rejected.clone(),
            ref_rejected: self.ref_chosen.clone(),
            chosen_counts: self.rejected_counts.clone(),
            rejected_counts: self.chosen_counts.clone(),
        }
    }
}

/// Inputs with the policy log-probs as variables, so gradients can be read back.
pub struct Built {
    pub inputs: LossInputs,
    pub policy_chosen: Var,
    pub policy_rejected: Var,
}

pub fn build(p: &Pairs, dtype: DType) -> Built {
    let policy_chosen = Var::from_tensor(&vector(&p.policy_chosen, dtype)).unwrap();
    let policy_rejected = Var::from_tensor(&vector(&p.policy_rejected, dtype)).unwrap();
    let inputs = LossInputs {
        policy_chosen_logps: policy_chosen.as_tensor().clone(),
        policy_rejected_logps: policy_rejected.as_tensor().clone(),
        ref_chosen_logps: Some(vector(&p.ref_chosen, dtype)),
        ref_rejected_logps: Some(vector(&p.ref_rejected, dtype)),
        chosen_counts: vector(&p.chosen_counts, dtype),
        rejected_counts: vector(&p.rejected_counts, dtype),
        policy_token_logps: None,
        wpo_log_weights: None,
    };
    Built {
        inputs,
        policy_chosen,
        policy_rejected,
    }
}

/// Parses a `[loss]` table given as TOML.
pub fn loss_from_toml(text: &str) -> ganpo::losses::Loss {
    let config: LossConfig = toml::from_str(text).unwrap();
    config.resolve().unwrap()
}

/// Computes `loss` on `built` with a fresh state and returns the output and the gradients of
/// `Σ_i c_i·loss_i` with respect to the policy's chosen and rejected log-probs.
pub fn run(
    loss: &ganpo::losses::Loss,
    built: &Built,
    cotangent: &[f64],
) -> (LossOutput, Tensor, Tensor) {
    let mut state = LossState::default();
    let out = loss.compute(&built.inputs, &mut state).unwrap();
    let c = vector(cotangent, out.losses.dtype());
    let grads = (&out.losses * c)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gc = grads.get(built.policy_chosen.as_tensor()).unwrap().clone();
    let gr = grads
        .get(built.policy_rejected.as_tensor())
        .unwrap()
        .clone();
    (out, gc, gr)
}

/// A tensor's values as f64.
pub fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
}
