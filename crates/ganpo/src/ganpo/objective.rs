//! One GANPO discriminator step and the generator term, calling D⁺ and D⁻ in the authors' order.
//!
//! The order matters beyond style: every training-mode forward advances the spectral-norm u/v of
//! the discriminator it runs, so each of the six scores is taken with a different σ estimate. The
//! authors (`compute_loss_disc`) score D⁺ on (h_θ⁺, h_ref⁺, h_ref⁻), then D⁻ on (h_θ⁻, h_ref⁺, h_ref⁻);
//! so do we, which makes the step reproducible against their code.

use candle_core::Tensor;

use super::baselines::{Baselines, RunningMeans};
use super::discriminator::Discriminator;
use super::losses::{self, DiscriminatorLosses, DiscriminatorScores, GeneratorLosses};
use super::mode::Mode;
use crate::Result;

/// The four latent groups of a batch, each `[B, T, d]`, with the masks that select the positions the
/// discriminators attend to and pool over (`[B, T]`, 1 = use). Chosen groups share `chosen_mask`,
/// rejected groups `rejected_mask`; all-ones masks reproduce the authors' unmasked discriminators.
#[derive(Debug, Clone, Copy)]
pub struct Latents<'a> {
    /// h_θ⁺: the policy's last hidden states on (prompt, chosen).
    pub policy_chosen: &'a Tensor,
    /// h_θ⁻: the policy's last hidden states on (prompt, rejected).
    pub policy_rejected: &'a Tensor,
    /// h_ref⁺: the reference's last hidden states on (prompt, chosen).
    pub ref_chosen: &'a Tensor,
    /// h_ref⁻: the reference's last hidden states on (prompt, rejected).
    pub ref_rejected: &'a Tensor,
    /// Mask of the chosen sequences.
    pub chosen_mask: &'a Tensor,
    /// Mask of the rejected sequences.
    pub rejected_mask: &'a Tensor,
}

/// What one discriminator step produced.
#[derive(Debug, Clone)]
pub struct DiscriminatorStep {
    /// The six training-mode scores, `[B]` each.
    pub scores: DiscriminatorScores,
    /// The batch means of those scores.
    pub batch_means: Baselines,
    /// The running means after folding in `batch_means`, as used by the losses.
    pub baselines: Baselines,
    /// Per-pair L_D⁺ and L_D⁻, `[B]` each: `plus` has gradients only into D⁺, `minus` only into D⁻.
    pub losses: DiscriminatorLosses,
}

/// Scores all four groups with both discriminators in training mode, updates `means`, and returns
/// the discriminator losses. Every latent is detached first, so no gradient of these losses can
/// reach the policy (or anything else upstream of the latents).
pub fn discriminator_step(
    plus: &mut Discriminator,
    minus: &mut Discriminator,
    latents: &Latents<'_>,
    means: &mut RunningMeans,
) -> Result<DiscriminatorStep> {
    let (pc, pr) = (
        latents.policy_chosen.detach(),
        latents.policy_rejected.detach(),
    );
    let (rc, rr) = (latents.ref_chosen.detach(), latents.ref_rejected.detach());
    let (mc, mr) = (latents.chosen_mask, latents.rejected_mask);
    let train = Mode::Train;
    // Each discriminator scores its three groups in one stacked forward, with the power
    // iterations and dropout masks of three successive calls in the authors' order.
    let [plus_policy, plus_ref_chosen, plus_ref_rejected] =
        three(plus.forward_each(&[(&pc, mc), (&rc, mc), (&rr, mr)], train)?)?;
    let [minus_policy, minus_ref_chosen, minus_ref_rejected] =
        three(minus.forward_each(&[(&pr, mr), (&rc, mc), (&rr, mr)], train)?)?;
    let scores = DiscriminatorScores {
        plus_policy,
        plus_ref_chosen,
        plus_ref_rejected,
        minus_policy,
        minus_ref_chosen,
        minus_ref_rejected,
    };
    let batch_means = Baselines::batch_means(&scores)?;
    let baselines = means.update(&batch_means);
    let losses = losses::discriminator_losses(&scores, &baselines)?;
    Ok(DiscriminatorStep {
        scores,
        batch_means,
        baselines,
        losses,
    })
}

/// The three scores of a three-input [`Discriminator::forward_each`].
fn three(scores: Vec<Tensor>) -> Result<[Tensor; 3]> {
    <[Tensor; 3]>::try_from(scores).map_err(|s| {
        candle_core::Error::Msg(format!("expected 3 discriminator scores, got {}", s.len())).into()
    })
}

/// The generator term's halves per pair `[B]` each: the policy's latents through the frozen
/// discriminators ([`Mode::Frozen`]: eval mode, parameters as constants), against the running means
/// left by the last discriminator step. Gradients reach `policy_chosen` and `policy_rejected` only.
pub fn generator_terms(
    plus: &mut Discriminator,
    minus: &mut Discriminator,
    policy_chosen: &Tensor,
    policy_rejected: &Tensor,
    chosen_mask: &Tensor,
    rejected_mask: &Tensor,
    means: &RunningMeans,
) -> Result<GeneratorLosses> {
    let baselines = means.require()?;
    let plus_policy = plus.forward(policy_chosen, chosen_mask, Mode::Frozen)?;
    let minus_policy = minus.forward(policy_rejected, rejected_mask, Mode::Frozen)?;
    losses::generator_terms(&plus_policy, &minus_policy, baselines)
}

/// The generator term L_G per pair `[B]` (see [`generator_terms`]).
pub fn generator_losses(
    plus: &mut Discriminator,
    minus: &mut Discriminator,
    policy_chosen: &Tensor,
    policy_rejected: &Tensor,
    chosen_mask: &Tensor,
    rejected_mask: &Tensor,
    means: &RunningMeans,
) -> Result<Tensor> {
    generator_terms(
        plus,
        minus,
        policy_chosen,
        policy_rejected,
        chosen_mask,
        rejected_mask,
        means,
    )?
    .per_pair()
}
