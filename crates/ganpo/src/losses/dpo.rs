//! DPO and its direct variants on the margin h = Δ(y_w) − Δ(y_l): the logistic loss with label
//! smoothing (cDPO), robust DPO, length-normalized DPO (`sigmoid_norm`) and the hinge (SLiC/RSO) loss.

use candle_core::Tensor;

use super::inputs::{LossInputs, LossOutput};
use super::numerics::{log_sigmoid, relu};
use crate::Result;

/// `−(1−ε)·log σ(z) − ε·log σ(−z)`: the logistic loss with labels smoothed by ε (cDPO), shared by
/// every loss of this shape (DPO, AOT, SimPO, CPO).
pub(crate) fn smoothed_logistic(z: &Tensor, label_smoothing: f64) -> Result<Tensor> {
    let pos = log_sigmoid(z)?.affine(-(1.0 - label_smoothing), 0.0)?;
    if label_smoothing == 0.0 {
        return Ok(pos);
    }
    let neg = log_sigmoid(&z.neg()?)?.affine(-label_smoothing, 0.0)?;
    Ok((pos + neg)?)
}

/// DPO (`sigmoid`), with conservative label smoothing (cDPO) when ε > 0:
///
/// `L = −(1−ε)·log σ(β h) − ε·log σ(−β h)`, `h = [S_θ(y_w) − S_θ(y_l)] − [S_ref(y_w) − S_ref(y_l)]`
/// over **summed** completion log-probs. Rewards `β·Δ(y)`.
///
/// Rafailov et al. 2023 (arXiv 2305.18290), eq. 7; cDPO: Mitchell 2023, "A note on DPO with noisy
/// preferences". Matches TRL ≤ 0.28 `DPOTrainer.dpo_loss` (`loss_type="sigmoid"`, `label_smoothing`),
/// OpenRLHF, LLaMA-Factory and torchtune. At h = 0 the loss is ln 2 and ∂L/∂S_θ(y_w) = −β/2 exactly.
pub fn sigmoid(inputs: &LossInputs, beta: f64, label_smoothing: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("sigmoid")?;
    let losses = smoothed_logistic(&r.margin.affine(beta, 0.0)?, label_smoothing)?;
    r.output(losses, beta)
}

/// Robust DPO (`robust`), an unbiased estimate of the clean DPO loss under preference flips at rate ε:
///
/// `L = [−(1−ε)·log σ(β h) + ε·log σ(−β h)] / (1 − 2ε)`, summed log-probs. Rewards `β·Δ(y)`.
///
/// Chowdhury et al. 2024, "Provably robust DPO" (arXiv 2403.00409), eq. 9; TRL `loss_type="robust"`.
pub fn robust(inputs: &LossInputs, beta: f64, label_smoothing: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("robust")?;
    let z = r.margin.affine(beta, 0.0)?;
    let clean = log_sigmoid(&z)?.affine(-(1.0 - label_smoothing), 0.0)?;
    let flipped = log_sigmoid(&z.neg()?)?.affine(label_smoothing, 0.0)?;
    let losses = (clean + flipped)?.affine(1.0 / (1.0 - 2.0 * label_smoothing), 0.0)?;
    r.output(losses, beta)
}

/// Length-normalized DPO (`sigmoid_norm`):
///
/// `L = −log σ(β·[Δ(y_w)/n_w − Δ(y_l)/n_l])` with Δ over summed log-probs, i.e. the margin of
/// **average** log-ratios. Rewards stay `β·Δ(y)` over sums, as TRL 1.x logs them.
///
/// Tülu 3 (Lambert et al. 2024, arXiv 2411.15124), "DPO-norm"; SimPO paper's "DPO w/ LN"; TRL 1.x
/// `loss_type="sigmoid_norm"` (not in TRL ≤ 0.28).
pub fn sigmoid_norm(inputs: &LossInputs, beta: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("sigmoid_norm")?;
    let chosen_n = x.chosen_counts.clamp(1.0, f64::INFINITY)?;
    let rejected_n = x.rejected_counts.clamp(1.0, f64::INFINITY)?;
    let delta = (r.chosen.div(&chosen_n)? - r.rejected.div(&rejected_n)?)?;
    let losses = log_sigmoid(&delta.affine(beta, 0.0)?)?.neg()?;
    r.output(losses, beta)
}

/// Hinge loss (`hinge`) of SLiC-HF / RSO:
///
/// `L = max(0, 1 − β h)`, summed log-probs; β is the inverse margin. Rewards `β·Δ(y)`. The
/// subgradient at the kink is 0, as in PyTorch.
///
/// Zhao et al. 2023, SLiC-HF (arXiv 2305.10425); Liu et al. 2023, RSO (arXiv 2309.06657), eq. 10;
/// TRL `loss_type="hinge"`.
pub fn hinge(inputs: &LossInputs, beta: f64) -> Result<LossOutput> {
    let x = inputs.checked()?;
    let r = x.log_ratios("hinge")?;
    let losses = relu(&r.margin.affine(-beta, 1.0)?)?;
    r.output(losses, beta)
}
