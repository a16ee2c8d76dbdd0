//! Multi-head causal self-attention with grouped-query heads, rotary positions, padding and
//! sliding-window masks, and Gemma-2's score soft-capping.

use candle_core::{DType, Device, Tensor};

use super::config::{AttentionKind, ModelConfig};
use super::layers::{Linear, RmsNorm};
use super::rotary::Rotary;
use super::weights::Weights;
use crate::{Result, kernels};

/// The additive attention bias for a batch: 0 where a query may attend a key, a large negative
/// number elsewhere. Shape `[batch, 1, seq, seq]`.
#[derive(Debug, Clone)]
pub struct AttentionMasks {
    /// Causal + key-padding mask, for global layers.
    pub full: Tensor,
    /// Causal + key-padding + sliding-window mask, for sliding layers (if any).
    pub sliding: Option<Tensor>,
}

/// Value added to masked scores. Finite (as transformers' `finfo.min`) so that no `inf − inf` can
/// reach the backward pass.
const MASKED: f32 = -1.0e30;

impl AttentionMasks {
    /// Builds the masks from a `[batch, seq]` attention mask (1 = real token, 0 = padding).
    pub fn new(
        attention_mask: &[Vec<u32>],
        sliding_window: Option<usize>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let batch = attention_mask.len();
        let seq = attention_mask.first().map_or(0, Vec::len);
        let build = |window: Option<usize>| -> Result<Tensor> {
            let mut bias = vec![MASKED; batch * seq * seq];
            for (b, row) in attention_mask.iter().enumerate() {
                for q in 0..seq {
                    let lo = window.map_or(0, |w| (q + 1).saturating_sub(w));
                    for k in lo..=q {
                        if row[k] != 0 {
                            bias[(b * seq + q) * seq + k] = 0.0;
                        }
                    }
                }
            }
            Ok(Tensor::from_vec(bias, (batch, 1, seq, seq), device)?.to_dtype(dtype)?)
        };
        Ok(AttentionMasks {
            full: build(None)?,
            sliding: sliding_window.map(|w| build(Some(w))).transpose()?,
        })
    }
}

/// One attention block's projections and settings.
#[derive(Debug, Clone)]
pub struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    scale: f64,
    softcap: Option<f64>,
    kind: AttentionKind,
}

impl Attention {
    /// Loads `{prefix}.{q,k,v,o}_proj` for layer kind `kind`.
    pub fn load(
        w: &mut Weights,
        prefix: &str,
        config: &ModelConfig,
        kind: AttentionKind,
    ) -> Result<Self> {
        let d = config.hidden_size;
        let q_dim = config.num_attention_heads * config.head_dim;
        let kv_dim = config.num_key_value_heads * config.head_dim;
        Ok(Attention {
            q_proj: Linear::load(w, &format!("{prefix}.q_proj"), d, q_dim, config.qkv_bias)?,
            k_proj: Linear::load(w, &format!("{prefix}.k_proj"), d, kv_dim, config.qkv_bias)?,
            v_proj: Linear::load(w, &format!("{prefix}.v_proj"), d, kv_dim, config.qkv_bias)?,
            o_proj: Linear::load(w, &format!("{prefix}.o_proj"), q_dim, d, config.o_bias)?,
            num_heads: config.num_attention_heads,
            num_kv_heads: config.num_key_value_heads,
            head_dim: config.head_dim,
            scale: config.query_pre_attn_scalar.powf(-0.5),
            softcap: config.attn_logit_softcapping,
            kind,
        })
    }

    /// The projections by name, for attaching adapters.
    pub(crate) fn projections_mut(&mut self) -> [(&'static str, &mut Linear); 4] {
        [
            ("q_proj", &mut self.q_proj),
            ("k_proj", &mut self.k_proj),
            ("v_proj", &mut self.v_proj),
            ("o_proj", &mut self.o_proj),
        ]
    }

    /// Whether any projection carries a LoRA adapter (such layers take the composed path: the
    /// fused ops read the base weights only).
    fn adapted(&self) -> bool {
        [&self.q_proj, &self.k_proj, &self.v_proj, &self.o_proj]
            .iter()
            .any(|p| p.adapter().is_some())
    }

    /// Whether this layer uses the sliding-window mask.
    pub fn kind(&self) -> AttentionKind {
        self.kind
    }

    /// Projects `x` (`[batch, seq, d]`) into unrotated queries, keys and values, each
    /// `[batch, heads, seq, head_dim]` (keys and values with the key/value head count).
    fn qkv(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, t, _) = x.dims3()?;
        let split = |y: Tensor, heads: usize| -> Result<Tensor> {
            Ok(y.reshape((b, t, heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        Ok((
            split(self.q_proj.forward(x)?, self.num_heads)?,
            split(self.k_proj.forward(x)?, self.num_kv_heads)?,
            split(self.v_proj.forward(x)?, self.num_kv_heads)?,
        ))
    }

    /// Queries and keys rotated for positions `start..start + seq`, and values. Each is one op
    /// from `x` ([`kernels::project_heads`]): no projection output or transposed copy is kept for
    /// the backward pass beside the heads themselves.
    pub fn project(
        &self,
        x: &Tensor,
        rotary: &Rotary,
        start: usize,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (cos, sin) = rotary.tables(start, x.dim(1)?, x.dtype())?;
        if self.adapted() {
            let (q, k, v) = self.qkv(x)?;
            return Ok((
                kernels::rope(&q, &cos, &sin)?,
                kernels::rope(&k, &cos, &sin)?,
                v,
            ));
        }
        let heads = |proj: &Linear, heads: usize, rope: Option<kernels::RopeTables<'_>>| {
            kernels::project_heads(x, proj.weight(), proj.bias(), heads, rope)
        };
        Ok((
            heads(&self.q_proj, self.num_heads, Some((&cos, &sin)))?,
            heads(&self.k_proj, self.num_kv_heads, Some((&cos, &sin)))?,
            heads(&self.v_proj, self.num_kv_heads, None)?,
        ))
    }

    /// Like [`Attention::project`], with explicit per-row positions (`[batch, seq]` u32).
    pub fn project_at(
        &self,
        x: &Tensor,
        rotary: &Rotary,
        positions: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (q, k, v) = self.qkv(x)?;
        Ok((
            rotary.apply_at(&q, positions)?,
            rotary.apply_at(&k, positions)?,
            v,
        ))
    }

    /// Attends queries `q` to keys/values `k`, `v` under the additive `mask`
    /// (`[batch, 1, q_len, k_len]`) and applies the output projection.
    pub fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let out = match self.softcap {
            None => kernels::attention(q, k, v, mask, self.scale, None)?,
            // Gemma-2 soft-caps the scores before the softmax, so they are materialized here.
            Some(cap) => kernels::grouped_attention_composed(q, k, v, |scores| {
                let capped = (((scores * self.scale)? / cap)?.tanh()? * cap)?;
                kernels::masked_softmax(&capped, mask, 1.0)
            })?,
        };
        self.o_proj.forward(&out)
    }

    /// Full self-attention over `x` (`[batch, seq, d]`).
    pub fn forward(&self, x: &Tensor, rotary: &Rotary, masks: &AttentionMasks) -> Result<Tensor> {
        let (q, k, v) = self.project(x, rotary, 0)?;
        self.attend(&q, &k, &v, self.mask(masks))
    }

    /// `residual + ` [`Attention::forward`]`(x)`. Without soft-capping or an output-projection
    /// bias, the output projection and the residual add are one op
    /// ([`kernels::linear_residual`]), so the projection's output is not a graph node of its own.
    pub fn forward_residual(
        &self,
        x: &Tensor,
        rotary: &Rotary,
        masks: &AttentionMasks,
        residual: &Tensor,
    ) -> Result<Tensor> {
        let (q, k, v) = self.project(x, rotary, 0)?;
        let mask = self.mask(masks);
        match (self.softcap, self.o_proj.bias()) {
            (None, None) => {
                let out = kernels::attention(&q, &k, &v, mask, self.scale, None)?;
                let y = kernels::linear_residual(&out, self.o_proj.weight(), residual)?;
                match self.o_proj.adapter() {
                    // The adapter's update adds into the residual sum (LoRA is linear in `y`).
                    Some(adapter) => adapter.add_to(&y, &out),
                    None => Ok(y),
                }
            }
            _ => Ok((residual + self.attend(&q, &k, &v, mask)?)?),
        }
    }

    /// `x + ` [`Attention::forward`]`(norm(x))`: without soft-capping or an output-projection
    /// bias, one op from `x` ([`kernels::attention_block`]) whose weight gradients go to `grads`.
    pub(crate) fn forward_block(
        &self,
        x: &Tensor,
        norm: &RmsNorm,
        rotary: &Rotary,
        masks: &AttentionMasks,
        grads: Option<&kernels::ParamGrads>,
    ) -> Result<Tensor> {
        // The op has no soft-capping and no output bias, and biases on all of q, k, v or none.
        let qkv_bias = match (self.q_proj.bias(), self.k_proj.bias(), self.v_proj.bias()) {
            (Some(q), Some(k), Some(v)) => Some(Some([q, k, v])),
            (None, None, None) => Some(None),
            _ => None,
        };
        let Some(qkv_bias) = qkv_bias
            .filter(|_| self.softcap.is_none() && self.o_proj.bias().is_none() && !self.adapted())
        else {
            return self.forward_residual(&norm.forward(x)?, rotary, masks, x);
        };
        let (cos, sin) = rotary.tables(0, x.dim(1)?, x.dtype())?;
        let (norm, eps, add_one) = norm.parts();
        let block = kernels::AttentionBlock {
            norm,
            q: self.q_proj.weight(),
            k: self.k_proj.weight(),
            v: self.v_proj.weight(),
            o: self.o_proj.weight(),
            qkv_bias,
            heads: self.num_heads,
            kv_heads: self.num_kv_heads,
            rope: (&cos, &sin),
            mask: self.mask(masks),
            scale: self.scale,
            eps,
            add_one,
        };
        kernels::attention_block(x, &block, grads)
    }

    /// The mask this layer attends under (sliding-window layers use the sliding one).
    fn mask<'m>(&self, masks: &'m AttentionMasks) -> &'m Tensor {
        match (self.kind, &masks.sliding) {
            (AttentionKind::Sliding, Some(sliding)) => sliding,
            _ => &masks.full,
        }
    }
}
