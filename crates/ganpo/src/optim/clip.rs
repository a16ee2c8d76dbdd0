//! Global-norm gradient clipping, as `torch.nn.utils.clip_grad_norm_`.

use candle_core::{Var, backprop::GradStore};

use crate::Result;
use crate::kernels::sum_of_squares;

/// The global L2 norm of the gradients of `vars` (variables without a gradient count as zero),
/// accumulated in f64.
pub fn global_grad_norm(grads: &GradStore, vars: &[(String, Var)]) -> Result<f64> {
    let mut total = 0f64;
    for (_, var) in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            total += sum_of_squares(g)?;
        }
    }
    Ok(total.sqrt())
}

/// Computes the global L2 norm of the gradients of `vars` and, when `max_norm` is given and the norm
/// exceeds it, scales every gradient by `max_norm / (norm + 1e-6)` in place. Returns the norm
/// before clipping (what TRL logs as `grad_norm`).
pub fn clip_grad_norm(
    grads: &mut GradStore,
    vars: &[(String, Var)],
    max_norm: Option<f64>,
) -> Result<f64> {
    let norm = global_grad_norm(grads, vars)?;
    if let Some(max) = max_norm {
        let coef = max / (norm + 1e-6);
        if coef < 1.0 {
            for (_, var) in vars {
                if let Some(g) = grads.get(var.as_tensor()) {
                    let scaled = (g * coef)?;
                    grads.insert(var.as_tensor(), scaled);
                }
            }
        }
    }
    Ok(norm)
}
