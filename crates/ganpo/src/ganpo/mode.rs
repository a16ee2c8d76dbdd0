//! How a discriminator forward runs: training, evaluation, or evaluation with frozen parameters.

/// The mode of one discriminator forward, chosen per call by the caller.
///
/// | mode     | dropout | spectral-norm power iteration | gradient into the discriminator |
/// |----------|---------|-------------------------------|---------------------------------|
/// | `Train`  | yes     | one step, u/v updated         | yes                             |
/// | `Eval`   | no      | none, stored u/v              | yes                             |
/// | `Frozen` | no      | none, stored u/v              | no (parameters enter as constants) |
///
/// `Frozen` is the authors' generator step (`eval()` plus `requires_grad_(False)`): gradients reach
/// the input latents only, and nothing about the discriminator is toggled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training: dropout and one power iteration per spectrally normalized layer.
    Train,
    /// Evaluation: deterministic, u/v untouched, parameters tracked by autograd.
    Eval,
    /// Evaluation with every parameter detached.
    Frozen,
}

impl Mode {
    /// Whether dropout and the power iteration run.
    pub fn is_training(self) -> bool {
        matches!(self, Mode::Train)
    }

    /// The tensor a forward in this mode reads for `var`: the variable itself, or a detached view.
    pub fn param(self, var: &candle_core::Var) -> candle_core::Tensor {
        match self {
            Mode::Frozen => var.as_detached_tensor(),
            Mode::Train | Mode::Eval => var.as_tensor().clone(),
        }
    }
}
