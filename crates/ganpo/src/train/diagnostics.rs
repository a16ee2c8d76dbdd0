//! The step's optional diagnostic (`diagnostics = true`, on logging steps): how large the
//! adversarial term's gradient is next to the preference loss's, `adv/grad_norm_ratio`
//! = ‖∇λ·L_G‖ / ‖∇L_PO‖. It costs a second backward pass per micro-batch, since the two terms
//! are back-propagated apart; their gradients are then summed as the single pass would.

use candle_core::Tensor;

use crate::Result;
use crate::model::CausalLm;
use crate::optim::global_grad_norm;
use crate::train::grad_accum::GradAccumulator;
use crate::train::metrics::Metrics;

/// Squared gradient norms of both terms, summed over the step's micro-batches.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct GradNormRatio {
    preference_sq: f64,
    adversarial_sq: f64,
}

impl GradNormRatio {
    /// Back-propagates `preference` and `adversarial` apart, adds both gradients to `acc` and
    /// their squared norms here.
    pub(crate) fn backward_apart(
        &mut self,
        policy: &CausalLm,
        preference: &Tensor,
        adversarial: &Tensor,
        acc: &mut GradAccumulator,
    ) -> Result<()> {
        let vars = policy.vars();
        let g_po = policy.backward(preference)?;
        let g_adv = policy.backward(adversarial)?;
        self.preference_sq += global_grad_norm(&g_po, vars)?.powi(2);
        self.adversarial_sq += global_grad_norm(&g_adv, vars)?.powi(2);
        acc.add(g_po)?;
        acc.add(g_adv)
    }

    /// Writes `adv/grad_norm_ratio` (nothing when the preference gradient is 0).
    pub(crate) fn write(&self, m: &mut Metrics) {
        if self.preference_sq > 0.0 {
            m.insert(
                "adv/grad_norm_ratio".into(),
                (self.adversarial_sq / self.preference_sq).sqrt(),
            );
        }
    }
}
