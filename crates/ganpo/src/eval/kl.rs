//! KL divergence between a policy and its reference on the same token sequences.
//!
//! * Per token, exactly over the vocabulary: `KL_t = Σ_v π(v|·) (log π(v|·) − log π_ref(v|·))`.
//! * Per sequence, the Monte-Carlo estimate on responses sampled from the policy:
//!   `KL(π‖π_ref) ≈ mean_y [log π(y) − log π_ref(y)]` (summed over completion tokens), which is
//!   unbiased because y ~ π.

use candle_core::{D, DType, Tensor};

use crate::{Error, Result};

/// Exact per-position KL(π‖π_ref) from logits `[batch, seq, vocab]`, weighted by `mask`
/// (`[batch, seq]`, 1 where the position predicts a completion token). Returns `[batch]`: the sum
/// over positions, and the masked token count, so callers can report totals or per-token means.
pub fn token_kl(
    policy_logits: &Tensor,
    ref_logits: &Tensor,
    mask: &Tensor,
) -> Result<(Tensor, Tensor)> {
    if policy_logits.dims() != ref_logits.dims() {
        return Err(Error::Config(format!(
            "token_kl: policy logits {:?} and reference logits {:?} differ",
            policy_logits.dims(),
            ref_logits.dims()
        )));
    }
    let lp = candle_nn::ops::log_softmax(&policy_logits.to_dtype(DType::F32)?.detach(), D::Minus1)?;
    let lq = candle_nn::ops::log_softmax(&ref_logits.to_dtype(DType::F32)?.detach(), D::Minus1)?;
    let kl = (lp.exp()? * (lp - lq)?)?.sum(D::Minus1)?; // [batch, seq]
    let mask = mask.to_dtype(DType::F32)?;
    Ok(((kl * &mask)?.sum(1)?, mask.sum(1)?))
}

/// Monte-Carlo sequence KL estimate from summed log-probs of policy samples under both models.
pub fn sequence_kl_estimate(policy_logps: &[f64], ref_logps: &[f64]) -> Result<f64> {
    if policy_logps.len() != ref_logps.len() || policy_logps.is_empty() {
        return Err(Error::Config(
            "sequence_kl_estimate needs equally many (≥ 1) policy and reference log-probs".into(),
        ));
    }
    Ok(policy_logps
        .iter()
        .zip(ref_logps)
        .map(|(p, q)| p - q)
        .sum::<f64>()
        / policy_logps.len() as f64)
}
