//! Held-out preference metrics of a policy against its reference (TRL's `eval_rewards/*`,
//! `eval_logps/*` and the DPO loss at a given β), and, from the same forward passes, both models'
//! mean-pooled last hidden states for the latent diagnostics.

use candle_core::Tensor;

use super::pool::mean_pool;
use crate::data::TokenizedPair;
use crate::model::CausalLm;
use crate::train::evaluate::EvalPass;
use crate::train::forward::PairOutputs;
use crate::train::metrics::Metrics;
use crate::{Error, Result};

/// Both models' pooled latents of every sequence of the preference data (chosen and rejected).
#[derive(Debug, Clone, Default)]
pub struct PooledLatents {
    /// The policy's mean-pooled last hidden state of each sequence.
    pub policy: Vec<Vec<f64>>,
    /// The reference's, in the same order.
    pub reference: Vec<Vec<f64>>,
    /// The index of the pair each sequence comes from.
    pub groups: Vec<usize>,
}

/// What one pass over the preference data yields.
#[derive(Debug, Clone)]
pub struct PreferenceEval {
    /// `eval_loss` (DPO, sigmoid, at `beta`), `eval_rewards/{chosen,rejected,margins,accuracies}`,
    /// `eval_logps/{chosen,rejected}`, `eval_logits/{chosen,rejected}`, pair-weighted means.
    pub metrics: Metrics,
    /// The pooled latents.
    pub latents: PooledLatents,
}

/// Runs policy and reference over `pairs` in batches of `batch_size` pairs (no gradient; the
/// training run's evaluation loop, [`EvalPass`]) and computes the DPO metrics with `beta` (rewards
/// `β·(log π − log π_ref)`).
pub fn preference_eval(
    policy: &CausalLm,
    reference: &CausalLm,
    pairs: &[TokenizedPair],
    pad_id: u32,
    beta: f64,
    batch_size: usize,
) -> Result<PreferenceEval> {
    if pairs.is_empty() {
        return Err(Error::Config(
            "no preference pairs to evaluate; check --data".into(),
        ));
    }
    let pass = EvalPass {
        policy,
        reference: Some(reference),
        pad_id,
        batch_size,
    };
    let mut latents = PooledLatents::default();
    let metrics = pass.run(
        pairs,
        |out, inputs| {
            let logged = (out.chosen_logps.detach(), out.rejected_logps.detach());
            Ok((crate::losses::sigmoid(inputs, beta, 0.0)?, logged))
        },
        |batch, out, reference| {
            let reference = reference.ok_or_else(|| Error::Training("no reference pass".into()))?;
            let pool = |o: &PairOutputs| -> Result<Vec<Vec<f64>>> {
                let hidden = Tensor::cat(&[&o.chosen_hidden, &o.rejected_hidden], 0)?;
                mean_pool(&hidden, &batch.attention_mask)
            };
            // Rows are [chosen; rejected] of the batch's pairs.
            let first = latents.policy.len() / 2;
            let n = out.chosen_logps.dim(0)?;
            latents.policy.extend(pool(out)?);
            latents.reference.extend(pool(reference)?);
            latents.groups.extend((0..2).flat_map(|_| first..first + n));
            Ok(())
        },
    )?;
    Ok(PreferenceEval { metrics, latents })
}
