//! Held-out preference metrics of a policy against its reference (TRL's `eval_rewards/*`,
//! `eval_logps/*` and the DPO loss at a given β), and, from the same forward passes, both models'
//! mean-pooled last hidden states for the latent diagnostics.

use candle_core::Tensor;

use super::pool::mean_pool;
use crate::data::{Batch, TokenizedPair};
use crate::losses::LossInputs;
use crate::model::CausalLm;
use crate::train::forward::pair_forward;
use crate::train::metrics::Metrics;
use crate::train::pair_metrics::SumMetrics;
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

/// Runs policy and reference over `pairs` in batches of `batch_size` pairs (no gradient) and
/// computes the DPO metrics with `beta` (rewards `β·(log π − log π_ref)`).
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
    let total = pairs.len() as f64;
    let mut sums = SumMetrics::default();
    let mut latents = PooledLatents::default();
    for (chunk_index, chunk) in pairs.chunks(batch_size.max(1)).enumerate() {
        let batch = Batch::collate(chunk, pad_id)?.to_tensors(policy.device())?;
        let run = |m: &CausalLm| {
            pair_forward(
                m,
                &batch.input_ids,
                &batch.attention_mask,
                &batch.loss_mask,
                false,
            )
        };
        let (out, ref_out) = (run(policy)?, run(reference)?);
        let inputs = LossInputs::from_sequence_logps(&out.sequence, Some(&ref_out.sequence))?;
        let lo = crate::losses::sigmoid(&inputs, beta, 0.0)?;
        let logged = (out.chosen_logps.detach(), out.rejected_logps.detach());
        sums.add(&out, &logged, &lo, chunk.len() as f64 / total)?;
        let pool = |o: &crate::train::forward::PairOutputs| -> Result<Vec<Vec<f64>>> {
            let hidden = Tensor::cat(&[&o.chosen_hidden, &o.rejected_hidden], 0)?;
            mean_pool(&hidden, &batch.attention_mask)
        };
        latents.policy.extend(pool(&out)?);
        latents.reference.extend(pool(&ref_out)?);
        // Rows are [chosen; rejected] of the chunk's pairs.
        let first = chunk_index * batch_size.max(1);
        latents
            .groups
            .extend((0..2).flat_map(|_| first..first + chunk.len()));
    }
    let mut metrics = Metrics::new();
    sums.write_prefixed(&mut metrics, "eval_");
    metrics.insert("eval_loss".into(), sums.loss());
    Ok(PreferenceEval { metrics, latents })
}
