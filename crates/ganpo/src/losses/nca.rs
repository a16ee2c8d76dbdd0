//! NCA-pair: noise-contrastive alignment, which optimizes absolute rewards rather than their difference.

use super::inputs::{LossInputs, LossOutput};
use super::numerics::log_sigmoid;
use crate::Result;

/// NCA with K = 2 (`nca_pair`):
///
/// `L = −log σ(r_w) − ½·log σ(−r_w) − ½·log σ(−r_l)`, `r = β·Δ(y)` over summed log-probs.
/// Rewards `r_w`, `r_l` (detached).
///
/// Chen et al. 2024, "Noise contrastive alignment of language models with explicit rewards"
/// (arXiv 2402.05369), eq. 12 with K = 2; TRL `loss_type="nca_pair"`. The paper uses β = 0.01.
pub fn nca_pair(inputs: &LossInputs, beta: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("nca_pair")?;
    let chosen = r.chosen.affine(beta, 0.0)?;
    let rejected = r.rejected.affine(beta, 0.0)?;
    let losses = (log_sigmoid(&chosen)?.neg()?
        - log_sigmoid(&chosen.neg()?)?.affine(0.5, 0.0)?
        - log_sigmoid(&rejected.neg()?)?.affine(0.5, 0.0)?)?;
    r.output(losses, beta)
}
