//! The differentiable building blocks of a decoder: linear projections, RMSNorm and the gated MLP.
//!
//! RMSNorm and the gated activation run as our fused kernels with their own backward pass
//! ([`crate::kernels`]); candle's fused `ops::rms_norm` and `RmsNorm::forward` silently drop
//! gradients (see `docs/design.md`).

use candle_core::Tensor;

use super::config::Activation;
use super::lora::LoraAdapter;
use super::weights::Weights;
use crate::{Result, kernels};

/// `y = x Wᵀ + b` with Hugging Face's `[out, in]` weight layout, plus a LoRA update when an
/// adapter is attached ([`super::lora`]).
#[derive(Debug, Clone)]
pub struct Linear {
    inner: candle_nn::Linear,
    lora: Option<LoraAdapter>,
}

impl Linear {
    /// Loads `{prefix}.weight` (and `{prefix}.bias` when `bias`) with shape `[out_dim, in_dim]`.
    pub fn load(
        w: &mut Weights,
        prefix: &str,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
    ) -> Result<Self> {
        let weight = w.get(&format!("{prefix}.weight"), &[out_dim, in_dim])?;
        let bias = if bias {
            Some(w.get(&format!("{prefix}.bias"), &[out_dim])?)
        } else {
            None
        };
        Ok(Linear {
            inner: candle_nn::Linear::new(weight, bias),
            lora: None,
        })
    }

    /// Wraps an existing weight (used for a tied LM head).
    pub fn from_weight(weight: Tensor) -> Self {
        Linear {
            inner: candle_nn::Linear::new(weight, None),
            lora: None,
        }
    }

    /// The `[out_dim, in_dim]` weight.
    pub fn weight(&self) -> &Tensor {
        self.inner.weight()
    }

    /// The `[out_dim]` bias, if the layer has one.
    pub fn bias(&self) -> Option<&Tensor> {
        self.inner.bias()
    }

    /// The LoRA adapter, if one is attached.
    pub fn adapter(&self) -> Option<&LoraAdapter> {
        self.lora.as_ref()
    }

    /// Attaches (or with `None` removes) a LoRA adapter.
    pub(crate) fn set_adapter(&mut self, adapter: Option<LoraAdapter>) {
        self.lora = adapter;
    }

    /// Applies the projection to `[..., in_dim]` as one 2-D product ([`kernels::linear`]), plus
    /// the adapter's low-rank update when one is attached.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = kernels::linear(x, self.inner.weight(), self.inner.bias())?;
        match &self.lora {
            Some(adapter) => adapter.add_to(&y, x),
            None => Ok(y),
        }
    }
}

/// Root-mean-square normalization, computed in f32 as Hugging Face does:
/// `y = x / sqrt(mean(x²) + ε) · w`, or `· (1 + w)` for Gemma.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
    add_one: bool,
}

impl RmsNorm {
    /// Loads `{prefix}.weight` of shape `[dim]`.
    pub fn load(
        w: &mut Weights,
        prefix: &str,
        dim: usize,
        eps: f64,
        add_one: bool,
    ) -> Result<Self> {
        Ok(RmsNorm {
            weight: w.get(&format!("{prefix}.weight"), &[dim])?,
            eps,
            add_one,
        })
    }

    /// The weight, ε and whether the weight is applied as `1 + w` (Gemma).
    pub(crate) fn parts(&self) -> (&Tensor, f64, bool) {
        (&self.weight, self.eps, self.add_one)
    }

    /// Normalizes over the last dimension (a fused kernel on the CPU, see [`crate::kernels`]).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        kernels::rms_norm(x, &self.weight, self.eps, self.add_one)
    }
}

/// Gated MLP: `down(act(gate(x)) ⊙ up(x))` (SwiGLU for SiLU, GeGLU for GELU).
#[derive(Debug, Clone)]
pub struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
    act: Activation,
}

impl Mlp {
    /// Loads `{prefix}.{gate,up,down}_proj`.
    pub fn load(
        w: &mut Weights,
        prefix: &str,
        dim: usize,
        hidden: usize,
        bias: bool,
        act: Activation,
    ) -> Result<Self> {
        Ok(Mlp {
            gate_proj: Linear::load(w, &format!("{prefix}.gate_proj"), dim, hidden, bias)?,
            up_proj: Linear::load(w, &format!("{prefix}.up_proj"), dim, hidden, bias)?,
            down_proj: Linear::load(w, &format!("{prefix}.down_proj"), hidden, dim, bias)?,
            act,
        })
    }

    /// The block `x + self(norm(x))`, or `x + post_norm(self(norm(x)))` (Gemma-2), as the fused
    /// op's weights, unless a projection has a bias (the op has none).
    pub fn block<'a>(
        &'a self,
        norm: &'a RmsNorm,
        post_norm: Option<&'a RmsNorm>,
    ) -> Option<kernels::MlpBlock<'a>> {
        // The fused op has no biases and no adapters (adapted layers take the composed path).
        let biased = [&self.gate_proj, &self.up_proj, &self.down_proj]
            .iter()
            .any(|p| p.bias().is_some() || p.adapter().is_some());
        let (norm_weight, eps, add_one) = norm.parts();
        // The block applies one ε and scaling to both norms (Gemma-2's agree).
        let post = match post_norm.map(RmsNorm::parts) {
            None => None,
            Some((w, e, a)) if e == eps && a == add_one => Some(w),
            Some(_) => return None,
        };
        (!biased).then_some(kernels::MlpBlock {
            norm: norm_weight,
            gate: self.gate_proj.weight(),
            up: self.up_proj.weight(),
            down: self.down_proj.weight(),
            eps,
            add_one,
            act: self.act,
            post_norm: post,
        })
    }

    /// The projections by name, for attaching adapters.
    pub(crate) fn projections_mut(&mut self) -> [(&'static str, &mut Linear); 3] {
        [
            ("gate_proj", &mut self.gate_proj),
            ("up_proj", &mut self.up_proj),
            ("down_proj", &mut self.down_proj),
        ]
    }

    /// Applies the MLP to `[..., dim]`. Without a down-projection bias, the activation and the
    /// down projection are one op ([`kernels::gated_down`]) that recomputes the activation in
    /// backward instead of keeping it.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = self.gate_proj.forward(x)?;
        let up = self.up_proj.forward(x)?;
        match (self.down_proj.bias(), self.down_proj.adapter()) {
            (None, None) => kernels::gated_down(&gate, &up, self.down_proj.weight(), self.act),
            _ => self
                .down_proj
                .forward(&kernels::gated_activation(&gate, &up, self.act)?),
        }
    }
}
