//! EXO-pair: preference optimization as reverse-KL minimization between the policy's and the
//! (ε-smoothed) empirical preference distributions over the pair.

use super::inputs::{LossInputs, LossOutput};
use super::numerics::{log_sigmoid, sigmoid};
use crate::Result;

/// EXO with K = 2 (`exo_pair`):
///
/// `L = σ(βh)·[log σ(βh) − log(1−ε)] + σ(−βh)·[log σ(−βh) − log ε]`, summed log-probs, i.e.
/// KL(Bern σ(βh) ‖ Bern(1−ε)). Rewards `β·Δ(y)`. Needs 0 < ε < 1 (TRL replaces ε = 0 by 1e−3; here
/// 1e−3 is the variant's default and 0 is rejected by validation).
///
/// Ji et al. 2024, "Towards efficient exact optimization of language model alignment"
/// (arXiv 2402.00856), eq. 16; TRL `loss_type="exo_pair"`.
pub fn exo_pair(inputs: &LossInputs, beta: f64, label_smoothing: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("exo_pair")?;
    let z = r.margin.affine(beta, 0.0)?;
    let chosen_term = sigmoid(&z)?.mul(&(log_sigmoid(&z)? - (1.0 - label_smoothing).ln())?)?;
    let neg = z.neg()?;
    let rejected_term = sigmoid(&neg)?.mul(&(log_sigmoid(&neg)? - label_smoothing.ln())?)?;
    r.output((chosen_term + rejected_term)?, beta)
}
