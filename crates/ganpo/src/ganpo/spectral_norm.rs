//! Spectral normalization of a linear layer, as `torch.nn.utils.spectral_norm` (Miyato et al., 2018).
//!
//! The layer keeps `weight_orig` W (trained) and two state vectors u ∈ ℝ^out, v ∈ ℝ^in. A training
//! forward first runs one power iteration on the detached weight,
//! `v ← normalize(Wᵀu)`, `u ← normalize(Wv)` with `normalize(x) = x / max(‖x‖, 1e-12)`,
//! then uses `W / σ` with `σ = uᵀWv`. Gradients flow into W through both W and σ; u and v are
//! constants. Evaluation forwards use the stored u, v and change nothing. Every training forward
//! advances u/v, so they are state that checkpoints and parity fixtures must carry.

use candle_core::{Tensor, Var};

use super::mode::Mode;
use crate::{Error, Result};

/// torch's `eps` for the power-iteration normalization.
const EPS: f64 = 1e-12;

/// A spectrally normalized `y = x (W/σ)ᵀ + b`.
#[derive(Debug, Clone)]
pub struct SpectralLinear {
    weight_orig: Var,
    bias: Var,
    u: Tensor,
    v: Tensor,
}

impl SpectralLinear {
    /// Wraps `weight_orig` `[out, in]`, `bias` `[out]` and the state vectors `u` `[out]`, `v` `[in]`.
    pub fn new(weight_orig: Var, bias: Var, u: Tensor, v: Tensor) -> Result<Self> {
        let mut layer = SpectralLinear {
            weight_orig,
            bias,
            u: u.clone(),
            v: v.clone(),
        };
        layer.set_state(&u, &v)?;
        Ok(layer)
    }

    /// The power-iteration vectors `(u, v)`.
    pub fn state(&self) -> (&Tensor, &Tensor) {
        (&self.u, &self.v)
    }

    /// Replaces u and v (checkpoint restore); shapes must be `[out]` and `[in]`.
    pub fn set_state(&mut self, u: &Tensor, v: &Tensor) -> Result<()> {
        let (out_dim, in_dim) = self.weight_orig.dims2()?;
        if u.dims() != [out_dim] || v.dims() != [in_dim] {
            return Err(Error::Checkpoint(format!(
                "spectral-norm state: expected u [{out_dim}] and v [{in_dim}], got u {:?} and v {:?}",
                u.dims(),
                v.dims()
            )));
        }
        let like = self.weight_orig.as_tensor();
        self.u = u
            .detach()
            .to_dtype(like.dtype())?
            .to_device(like.device())?;
        self.v = v
            .detach()
            .to_dtype(like.dtype())?
            .to_device(like.device())?;
        Ok(())
    }

    /// One power-iteration step on the detached weight (what a training forward does first).
    pub fn power_iteration(&mut self) -> Result<()> {
        let w = self.weight_orig.as_detached_tensor();
        let v = normalize(&self.u.unsqueeze(0)?.matmul(&w)?.squeeze(0)?)?;
        let u = normalize(&w.matmul(&v.unsqueeze(1)?)?.squeeze(1)?)?;
        self.u = u;
        self.v = v;
        Ok(())
    }

    /// `σ = uᵀ W v` with the stored u, v, as a `[1, 1]` tensor tracked through W (unless `Frozen`).
    pub fn sigma(&self, mode: Mode) -> Result<Tensor> {
        let w = mode.param(&self.weight_orig);
        Ok(self
            .u
            .unsqueeze(0)?
            .matmul(&w.matmul(&self.v.unsqueeze(1)?)?)?)
    }

    /// Applies the layer to `[..., in]`. In [`Mode::Train`] this first advances u/v.
    pub fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if mode.is_training() {
            self.power_iteration()?;
        }
        let weight = mode
            .param(&self.weight_orig)
            .broadcast_div(&self.sigma(mode)?)?;
        if mode == Mode::Frozen {
            return crate::kernels::frozen_linear(x, &weight, Some(self.bias.as_tensor()));
        }
        crate::kernels::linear(x, &weight, Some(&mode.param(&self.bias)))
    }
}

/// `x / max(‖x‖₂, eps)` for a vector.
fn normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_all()?.sqrt()?.maximum(EPS)?;
    Ok(x.broadcast_div(&norm)?)
}
