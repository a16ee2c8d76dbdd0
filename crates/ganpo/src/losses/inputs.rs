//! What every loss reads (per-pair summed log-probs, token counts, optional token-level log-probs and
//! WPO weights) and what it returns (per-example losses plus detached rewards).

use candle_core::Tensor;

use super::numerics::compute_dtype;
use crate::logps::SequenceLogps;
use crate::{Error, Result};

/// Per-pair inputs of a preference loss, in TRL's vocabulary. Pair `i` is (chosen `i`, rejected `i`);
/// every per-pair tensor has shape `[B]`.
///
/// `*_logps` are **summed** completion log-probs; each loss divides by the counts itself where its
/// formula uses averages. Reference log-probs are detached by the losses (the reference is frozen).
#[derive(Debug, Clone)]
pub struct LossInputs {
    /// `S_θ(y_w)`: the policy's summed log-prob of each chosen completion (differentiable).
    pub policy_chosen_logps: Tensor,
    /// `S_θ(y_l)`: the policy's summed log-prob of each rejected completion (differentiable).
    pub policy_rejected_logps: Tensor,
    /// `S_ref(y_w)`; `None` for reference-free losses (SimPO, CPO, ORPO).
    pub ref_chosen_logps: Option<Tensor>,
    /// `S_ref(y_l)`; `None` for reference-free losses.
    pub ref_rejected_logps: Option<Tensor>,
    /// `n(y_w)`: completion-token count of each chosen sequence.
    pub chosen_counts: Tensor,
    /// `n(y_l)`: completion-token count of each rejected sequence.
    pub rejected_counts: Tensor,
    /// The policy's per-token log-probs, needed only by LD-DPO (`ld_alpha`).
    pub policy_token_logps: Option<TokenLogps>,
    /// Per-sequence WPO log-weights, needed only when `use_weighting` is set.
    pub wpo_log_weights: Option<WpoLogWeights>,
}

/// Token-level policy log-probs of a `[chosen; rejected]` batch (rows `0..B` chosen, `B..2B` rejected),
/// as [`SequenceLogps`] holds them.
#[derive(Debug, Clone)]
pub struct TokenLogps {
    /// Log-prob of each completion token, zero elsewhere, `[2B, T]` (differentiable).
    pub token_logps: Tensor,
    /// 1 where the position holds a completion token, `[2B, T]`.
    pub mask: Tensor,
}

/// WPO log-weights `log w(y) = (1/n(y)) Σ_t [log π_θ(y_t | ·) − log Σ_v π_θ(v | ·)²]` (Zhou et al. 2024,
/// arXiv 2406.11827, eq. 2), one per sequence, computed by the caller from the policy's logits without
/// gradient. The loss applies `min(w(y_w)·w(y_l), 1)` (see [`super::wpo_weights`]).
#[derive(Debug, Clone)]
pub struct WpoLogWeights {
    /// `log w(y_w)`, `[B]`.
    pub chosen: Tensor,
    /// `log w(y_l)`, `[B]`.
    pub rejected: Tensor,
}

/// What a loss returns: per-example losses (the caller reduces them, usually by the mean) and the
/// detached implicit rewards TRL logs for that loss (`rewards/chosen`, `rewards/rejected`).
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// Per-example losses `[B]` (differentiable with respect to the policy log-probs).
    pub losses: Tensor,
    /// Detached reward of each chosen completion `[B]`.
    pub chosen_rewards: Tensor,
    /// Detached reward of each rejected completion `[B]`.
    pub rejected_rewards: Tensor,
}

/// Splits a `[chosen; rejected]` batch of rows `0..B` and `B..2B`.
fn halves(t: &Tensor, what: &str) -> Result<(Tensor, Tensor)> {
    let rows = t.dim(0)?;
    if rows == 0 || rows % 2 != 0 {
        return Err(Error::Config(format!(
            "{what}: a [chosen; rejected] batch needs an even, non-zero number of rows, got {rows}"
        )));
    }
    let b = rows / 2;
    Ok((t.narrow(0, 0, b)?, t.narrow(0, b, b)?))
}

impl LossInputs {
    /// Builds the inputs from the policy's (and optionally the reference's) log-probs of one
    /// `[chosen; rejected]` batch. Token-level policy log-probs are kept for LD-DPO; WPO weights are
    /// left unset.
    pub fn from_sequence_logps(
        policy: &SequenceLogps,
        reference: Option<&SequenceLogps>,
    ) -> Result<Self> {
        let (policy_chosen_logps, policy_rejected_logps) = halves(&policy.logps, "policy logps")?;
        let (chosen_counts, rejected_counts) = halves(&policy.counts, "policy counts")?;
        let (ref_chosen_logps, ref_rejected_logps) = match reference {
            Some(r) => {
                if r.logps.dims() != policy.logps.dims() {
                    return Err(Error::Config(format!(
                        "reference logps {:?} and policy logps {:?} come from different batches",
                        r.logps.dims(),
                        policy.logps.dims()
                    )));
                }
                let (c, r) = halves(&r.logps.detach(), "reference logps")?;
                (Some(c), Some(r))
            }
            None => (None, None),
        };
        Ok(LossInputs {
            policy_chosen_logps,
            policy_rejected_logps,
            ref_chosen_logps,
            ref_rejected_logps,
            chosen_counts,
            rejected_counts,
            policy_token_logps: Some(TokenLogps {
                token_logps: policy.token_logps.clone(),
                mask: policy.mask.clone(),
            }),
            wpo_log_weights: None,
        })
    }

    /// The number of pairs `B`.
    pub fn batch_size(&self) -> Result<usize> {
        Ok(self.policy_chosen_logps.dim(0)?)
    }

    /// A copy with shapes checked, everything in one float dtype (f64 stays f64, else f32) and every
    /// input that must not receive gradient (reference, counts, masks, weights) detached.
    pub(crate) fn checked(&self) -> Result<LossInputs> {
        let b = match self.policy_chosen_logps.dims() {
            [b] if *b > 0 => *b,
            dims => {
                return Err(Error::Config(format!(
                    "policy_chosen_logps must have shape [B] with B > 0, got {dims:?}"
                )));
            }
        };
        let dtype = compute_dtype(self.policy_chosen_logps.dtype());
        let per_pair = |t: &Tensor, what: &str| -> Result<Tensor> {
            if t.dims() != [b] {
                return Err(Error::Config(format!(
                    "{what} must have shape [{b}] like policy_chosen_logps, got {:?}",
                    t.dims()
                )));
            }
            Ok(t.to_dtype(dtype)?)
        };
        let detached = |t: &Option<Tensor>, what: &str| -> Result<Option<Tensor>> {
            t.as_ref().map(|t| per_pair(&t.detach(), what)).transpose()
        };
        let policy_token_logps = match &self.policy_token_logps {
            Some(tok) => {
                let dims = tok.token_logps.dims();
                if dims.len() != 2 || dims[0] != 2 * b || tok.mask.dims() != dims {
                    return Err(Error::Config(format!(
                        "token log-probs {dims:?} and mask {:?} must both be [2B = {}, T]",
                        tok.mask.dims(),
                        2 * b
                    )));
                }
                Some(TokenLogps {
                    token_logps: tok.token_logps.to_dtype(dtype)?,
                    mask: tok.mask.detach().to_dtype(dtype)?,
                })
            }
            None => None,
        };
        let wpo_log_weights = match &self.wpo_log_weights {
            Some(w) => Some(WpoLogWeights {
                chosen: per_pair(&w.chosen.detach(), "wpo_log_weights.chosen")?,
                rejected: per_pair(&w.rejected.detach(), "wpo_log_weights.rejected")?,
            }),
            None => None,
        };
        if self.ref_chosen_logps.is_some() != self.ref_rejected_logps.is_some() {
            return Err(Error::Config(
                "give both ref_chosen_logps and ref_rejected_logps, or neither".into(),
            ));
        }
        Ok(LossInputs {
            policy_chosen_logps: per_pair(&self.policy_chosen_logps, "policy_chosen_logps")?,
            policy_rejected_logps: per_pair(&self.policy_rejected_logps, "policy_rejected_logps")?,
            ref_chosen_logps: detached(&self.ref_chosen_logps, "ref_chosen_logps")?,
            ref_rejected_logps: detached(&self.ref_rejected_logps, "ref_rejected_logps")?,
            chosen_counts: per_pair(&self.chosen_counts.detach(), "chosen_counts")?,
            rejected_counts: per_pair(&self.rejected_counts.detach(), "rejected_counts")?,
            policy_token_logps,
            wpo_log_weights,
        })
    }

    /// The detached reference log-probs, or an error naming the loss that needs them.
    pub(crate) fn reference(&self, loss: &str) -> Result<(Tensor, Tensor)> {
        match (&self.ref_chosen_logps, &self.ref_rejected_logps) {
            (Some(c), Some(r)) => Ok((c.detach(), r.detach())),
            _ => Err(Error::Config(format!(
                "loss `{loss}` needs reference log-probs (ref_chosen_logps, ref_rejected_logps); \
                 run the reference model or pick a reference-free loss (simpo, cpo, orpo)"
            ))),
        }
    }

    /// Log-ratios `Δ(y) = S_θ(y) − S_ref(y)` and the DPO margin `h = Δ(y_w) − Δ(y_l)`.
    pub(crate) fn log_ratios(&self, loss: &str) -> Result<LogRatios> {
        let (ref_chosen, ref_rejected) = self.reference(loss)?;
        let chosen = (&self.policy_chosen_logps - &ref_chosen)?;
        let rejected = (&self.policy_rejected_logps - &ref_rejected)?;
        // TRL's association, (π_w − π_l) − (ref_w − ref_l): margin 0 is exact when policy = reference.
        let margin = ((&self.policy_chosen_logps - &self.policy_rejected_logps)?
            - (ref_chosen - ref_rejected)?)?;
        Ok(LogRatios {
            chosen,
            rejected,
            margin,
        })
    }

    /// The same inputs with every summed log-prob (policy and reference) divided by its token count,
    /// i.e. average log-probs `ℓ̄(y) = S(y)/n(y)`. Counts below 1 count as 1 (an empty completion
    /// averages to 0 rather than NaN, as TRL 1.x clamps).
    pub(crate) fn averaged(&self) -> Result<LossInputs> {
        let chosen_n = self.chosen_counts.clamp(1.0, f64::INFINITY)?;
        let rejected_n = self.rejected_counts.clamp(1.0, f64::INFINITY)?;
        let avg = |t: &Option<Tensor>, n: &Tensor| -> Result<Option<Tensor>> {
            t.as_ref().map(|t| Ok(t.div(n)?)).transpose()
        };
        Ok(LossInputs {
            policy_chosen_logps: self.policy_chosen_logps.div(&chosen_n)?,
            policy_rejected_logps: self.policy_rejected_logps.div(&rejected_n)?,
            ref_chosen_logps: avg(&self.ref_chosen_logps, &chosen_n)?,
            ref_rejected_logps: avg(&self.ref_rejected_logps, &rejected_n)?,
            ..self.clone()
        })
    }
}

/// Log-ratios of one batch: `Δ(y_w)`, `Δ(y_l)` and the margin `h`, all `[B]`.
pub(crate) struct LogRatios {
    /// `Δ(y_w) = S_θ(y_w) − S_ref(y_w)`.
    pub chosen: Tensor,
    /// `Δ(y_l) = S_θ(y_l) − S_ref(y_l)`.
    pub rejected: Tensor,
    /// `h = Δ(y_w) − Δ(y_l)`.
    pub margin: Tensor,
}

impl LogRatios {
    /// TRL's DPO-family rewards `β·Δ(y)`, detached.
    pub fn rewards(&self, beta: f64) -> Result<(Tensor, Tensor)> {
        Ok((
            self.chosen.detach().affine(beta, 0.0)?,
            self.rejected.detach().affine(beta, 0.0)?,
        ))
    }

    /// The output of a DPO-family loss: `losses` with rewards `β·Δ(y)`.
    pub fn output(&self, losses: Tensor, beta: f64) -> Result<LossOutput> {
        let (chosen_rewards, rejected_rewards) = self.rewards(beta)?;
        Ok(LossOutput {
            losses,
            chosen_rewards,
            rejected_rewards,
        })
    }
}
