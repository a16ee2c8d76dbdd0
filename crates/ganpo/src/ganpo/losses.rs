//! GANPO's relativistic adversarial losses (arXiv 2601.22083), pure functions of discriminator scores
//! and running-mean baselines.
//!
//! With `BCE(z, t) = softplus(z) − t·z` (binary cross-entropy with logits, written stably) and the
//! baselines m̄ of [`Baselines`]:
//!
//! ```text
//! L_D⁺ = ¼ [ BCE(D⁺(h_ref⁺) − m̄⁺_θ, 1)    + BCE(D⁺(h_θ⁺) − m̄⁺_ref+, 0)
//!          + BCE(D⁺(h_θ⁺)   − m̄⁺_ref−, 1) + BCE(D⁺(h_ref⁻) − m̄⁺_θ, 0) ]
//! L_D⁻ = ¼ [ BCE(D⁻(h_ref⁻) − m̄⁻_θ, 1)    + BCE(D⁻(h_θ⁻) − m̄⁻_ref−, 0)
//!          + BCE(D⁻(h_θ⁻)   − m̄⁻_ref+, 1) + BCE(D⁻(h_ref⁺) − m̄⁻_θ, 0) ]
//! L_G  = ½ [ BCE(D⁺(h_θ⁺) − m̄⁺_ref+, 1) + BCE(D⁻(h_θ⁻) − m̄⁻_ref−, 1) ]
//! ```
//!
//! D⁺ learns ref-chosen > policy-chosen > ref-rejected, D⁻ learns ref-rejected > policy-rejected >
//! ref-chosen; the policy (generator) pulls its scores up to the reference's. Every function returns
//! per-pair losses `[B]`; their mean is the authors' `BCEWithLogitsLoss` (mean reduction) value.

use candle_core::{DType, Tensor};

use super::baselines::Baselines;
use crate::Result;

/// The six scores of one discriminator step, each `[B]` (pair `i` of every group is pair `i` of the batch).
#[derive(Debug, Clone)]
pub struct DiscriminatorScores {
    /// D⁺(h_θ⁺): D⁺ on the policy's chosen latents.
    pub plus_policy: Tensor,
    /// D⁺(h_ref⁺): D⁺ on the reference's chosen latents.
    pub plus_ref_chosen: Tensor,
    /// D⁺(h_ref⁻): D⁺ on the reference's rejected latents.
    pub plus_ref_rejected: Tensor,
    /// D⁻(h_θ⁻): D⁻ on the policy's rejected latents.
    pub minus_policy: Tensor,
    /// D⁻(h_ref⁺): D⁻ on the reference's chosen latents.
    pub minus_ref_chosen: Tensor,
    /// D⁻(h_ref⁻): D⁻ on the reference's rejected latents.
    pub minus_ref_rejected: Tensor,
}

/// Per-pair discriminator losses, each `[B]`.
#[derive(Debug, Clone)]
pub struct DiscriminatorLosses {
    /// L_D⁺ (trains D⁺ only).
    pub plus: Tensor,
    /// L_D⁻ (trains D⁻ only).
    pub minus: Tensor,
}

/// Element-wise binary cross-entropy with logits, `BCE(z, t) = −t·log σ(z) − (1−t)·log(1−σ(z))`,
/// computed as `softplus(z) − t·z` with `softplus(z) = (z + |z|)/2 + log(1 + e^{−|z|})`.
///
/// The `(z + |z|)/2` form (rather than `max(z, 0)`) keeps the gradient at z = 0 exact (σ(0) − t)
/// whatever subgradient `|z|` gets; `e^{−|z|} ≤ 1` never overflows. Math runs in f32, or f64 for
/// f64 inputs.
pub fn bce_with_logits(z: &Tensor, target: f64) -> Result<Tensor> {
    let z = z.to_dtype(loss_dtype(z.dtype()))?;
    let abs = z.abs()?;
    let softplus = (((&z + &abs)? * 0.5)? + (abs.neg()?.exp()? + 1.0)?.log()?)?;
    Ok((softplus - (z * target)?)?)
}

/// L_D⁺ and L_D⁻ per pair, for `scores` taken with the discriminators in training mode and the
/// baselines already updated from those scores (see [`super::objective::discriminator_step`]).
pub fn discriminator_losses(
    scores: &DiscriminatorScores,
    means: &Baselines,
) -> Result<DiscriminatorLosses> {
    let s = scores;
    let plus = quad(
        [
            (&s.plus_ref_chosen, means.plus_policy, 1.0),
            (&s.plus_policy, means.plus_ref_chosen, 0.0),
            (&s.plus_policy, means.plus_ref_rejected, 1.0),
            (&s.plus_ref_rejected, means.plus_policy, 0.0),
        ],
        0.25,
    )?;
    let minus = quad(
        [
            (&s.minus_ref_rejected, means.minus_policy, 1.0),
            (&s.minus_policy, means.minus_ref_rejected, 0.0),
            (&s.minus_policy, means.minus_ref_chosen, 1.0),
            (&s.minus_ref_chosen, means.minus_policy, 0.0),
        ],
        0.25,
    )?;
    Ok(DiscriminatorLosses { plus, minus })
}

/// The generator term's two halves, per pair `[B]` each: the authors' `g_loss_mimic` (chosen, D⁺)
/// and `g_loss_mimic_rej` (rejected, D⁻) before their batch mean.
#[derive(Debug, Clone)]
pub struct GeneratorLosses {
    /// `BCE(D⁺(h_θ⁺) − m̄⁺_ref+, 1)`.
    pub chosen: Tensor,
    /// `BCE(D⁻(h_θ⁻) − m̄⁻_ref−, 1)`.
    pub rejected: Tensor,
}

impl GeneratorLosses {
    /// L_G per pair: `½ (chosen + rejected)`.
    pub fn per_pair(&self) -> Result<Tensor> {
        Ok(((&self.chosen + &self.rejected)? * 0.5)?)
    }
}

/// L_G's halves per pair: the policy's chosen scores under D⁺ pulled above m̄⁺_ref+, its rejected
/// scores under D⁻ above m̄⁻_ref−. `plus_policy` = D⁺(h_θ⁺), `minus_policy` = D⁻(h_θ⁻), both `[B]`,
/// taken with the discriminators frozen ([`super::Mode::Frozen`]) so that gradients reach only the
/// policy.
pub fn generator_terms(
    plus_policy: &Tensor,
    minus_policy: &Tensor,
    means: &Baselines,
) -> Result<GeneratorLosses> {
    Ok(GeneratorLosses {
        chosen: quad([(plus_policy, means.plus_ref_chosen, 1.0)], 1.0)?,
        rejected: quad([(minus_policy, means.minus_ref_rejected, 1.0)], 1.0)?,
    })
}

/// L_G per pair (see [`generator_terms`]).
pub fn generator_losses(
    plus_policy: &Tensor,
    minus_policy: &Tensor,
    means: &Baselines,
) -> Result<Tensor> {
    generator_terms(plus_policy, minus_policy, means)?.per_pair()
}

/// `scale · Σ BCE(score − baseline, target)`, in the loss dtype.
fn quad<const N: usize>(terms: [(&Tensor, f64, f64); N], scale: f64) -> Result<Tensor> {
    let terms = terms
        .into_iter()
        .map(|(score, baseline, target)| {
            let z = score.to_dtype(loss_dtype(score.dtype()))?;
            bce_with_logits(&z.affine(1.0, -baseline)?, target)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((Tensor::stack(&terms, 0)?.sum(0)? * scale)?)
}

fn loss_dtype(dtype: DType) -> DType {
    if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}
