//! One pre-LN transformer encoder layer, as torch's `TransformerEncoderLayer(norm_first=True,
//! activation="gelu", batch_first=True)`:
//!
//! `x ← x + Dropout(SelfAttention(LayerNorm₁(x)))`,
//! `x ← x + Dropout(W₂ Dropout(GELU(W₁ LayerNorm₂(x) + b₁)) + b₂)`,
//!
//! with dropout also on the attention probabilities, exact (erf) GELU and LayerNorm ε = 1e-5.
//! LayerNorm, attention (with its dropout mask multiplied into the probabilities), GELU with the
//! dropout after it, and each residual sum with the dropout before it are our fused kernels with
//! their own backward ([`crate::kernels`]): candle's fused `layer_norm` / `softmax_last_dim` drop
//! gradients, and each separate element-wise op would cost a full pass and, in backward, a zero
//! fill and an addition.

use candle_core::{DType, Tensor, Var};

use super::dropout::DropoutDraws;
use super::gelu::gelu;
use super::mode::Mode;
use super::pooling_mask::PoolingMask;
use crate::kernels::ParamGrads;
use crate::kernels::encoder::{LayerDropout, StackLayer, StackPool, encoder_stack};
use crate::{Result, kernels};

/// Dropout masks a training forward of one layer draws: the attention probabilities, the attention
/// output, the feed-forward hidden layer and the feed-forward output.
pub const DROPOUT_SITES: u64 = 4;

/// torch's `layer_norm_eps` default.
const LAYER_NORM_EPS: f64 = 1e-5;

/// The trainable tensors of one encoder layer, in torch's layout.
#[derive(Debug, Clone)]
pub struct EncoderLayerParams {
    /// `self_attn.in_proj_weight` `[3·width, width]`: rows are q, k, v.
    pub in_proj_weight: Var,
    /// `self_attn.in_proj_bias` `[3·width]`.
    pub in_proj_bias: Var,
    /// `self_attn.out_proj.weight` `[width, width]`.
    pub out_proj_weight: Var,
    /// `self_attn.out_proj.bias` `[width]`.
    pub out_proj_bias: Var,
    /// `linear1.weight` `[ffn, width]`.
    pub linear1_weight: Var,
    /// `linear1.bias` `[ffn]`.
    pub linear1_bias: Var,
    /// `linear2.weight` `[width, ffn]`.
    pub linear2_weight: Var,
    /// `linear2.bias` `[width]`.
    pub linear2_bias: Var,
    /// `norm1.weight`, `norm1.bias` `[width]`.
    pub norm1: (Var, Var),
    /// `norm2.weight`, `norm2.bias` `[width]`.
    pub norm2: (Var, Var),
}

/// A pre-LN encoder layer with `heads` attention heads and dropout probability `dropout`.
#[derive(Debug, Clone)]
pub struct EncoderLayer {
    params: EncoderLayerParams,
    heads: usize,
    dropout: f64,
}

impl EncoderLayer {
    /// Builds the layer; `heads` must divide the width (checked by the discriminator config).
    pub fn new(params: EncoderLayerParams, heads: usize, dropout: f64) -> Self {
        EncoderLayer {
            params,
            heads,
            dropout,
        }
    }

    /// The dropout masks one training forward of this layer draws ([`DROPOUT_SITES`], or none
    /// when its dropout probability is 0).
    pub fn dropout_sites(&self) -> u64 {
        if self.dropout > 0.0 { DROPOUT_SITES } else { 0 }
    }

    /// This layer as one of [`kernels::encoder::encoder_stack`]'s, over a stacked batch of `rows`
    /// sequences of `len` positions: its parameters (with their variables unless `mode` is
    /// [`Mode::Frozen`]) and, in training mode, its four dropout masks drawn from `drops` in the
    /// order [`EncoderLayer::forward`] draws them.
    pub fn stack_layer(
        &self,
        (rows, len): (usize, usize),
        mode: Mode,
        drops: &mut DropoutDraws<'_>,
    ) -> Result<StackLayer> {
        let p = &self.params;
        let vars = [
            &p.in_proj_weight,
            &p.in_proj_bias,
            &p.out_proj_weight,
            &p.out_proj_bias,
            &p.linear1_weight,
            &p.linear1_bias,
            &p.linear2_weight,
            &p.linear2_bias,
            &p.norm1.0,
            &p.norm1.1,
            &p.norm2.0,
            &p.norm2.1,
        ];
        let dropout = match mode.is_training() && self.dropout > 0.0 {
            true => {
                let width = p.out_proj_bias.elem_count();
                let ffn = p.linear1_bias.elem_count();
                let scale = 1.0 / (1.0 - self.dropout);
                let tokens = rows * len;
                Some(LayerDropout {
                    attention: drops.next(rows * self.heads * len * len, scale as f32)?,
                    attention_output: drops.next(tokens * width, 1.0)?,
                    hidden: drops.next(tokens * ffn, 1.0)?,
                    output: drops.next(tokens * width, 1.0)?,
                    scale: scale as f32,
                })
            }
            false => None,
        };
        Ok(StackLayer {
            params: vars.iter().map(|v| v.as_detached_tensor()).collect(),
            vars: (mode != Mode::Frozen).then(|| vars.iter().map(|&v| v.clone()).collect()),
            heads: self.heads,
            dropout,
        })
    }

    /// Applies the layer to `x` `[B, T, width]`. `attn_bias` `[B, 1, 1, T]` is 0 for keys that may
    /// be attended and a large negative number for padding keys (torch's `src_key_padding_mask`).
    /// In training mode each dropout site takes its mask from `drops`.
    pub fn forward(
        &self,
        x: &Tensor,
        attn_bias: &Tensor,
        mode: Mode,
        drops: &mut DropoutDraws<'_>,
    ) -> Result<Tensor> {
        let p = &self.params;
        let (x, g) = self.to_hidden(x, attn_bias, mode, drops)?;
        let h = linear(&g, &p.linear2_weight, &p.linear2_bias, mode)?;
        self.residual_dropout(&x, &h, mode, drops)
    }

    /// The layer followed by `pool`, a masked mean over positions (`[B, T, n]` → `[B, n]`). Without
    /// dropout the feed-forward block's output projection is affine and the pool is a weighted
    /// mean, so they commute: `pool(x + W₂ g + b₂) = pool(x) + W₂ pool(g) + b₂`, one `[B, ffn]`
    /// product instead of a `[B·T, ffn]` one (the generator term's last layer). With dropout the
    /// masks sit between the two, and the layer runs in full.
    pub fn forward_pooled(
        &self,
        x: &Tensor,
        attn_bias: &Tensor,
        mode: Mode,
        drops: &mut DropoutDraws<'_>,
        pool: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        if mode.is_training() && self.dropout > 0.0 {
            return pool(&self.forward(x, attn_bias, mode, drops)?);
        }
        let p = &self.params;
        let (x, g) = self.to_hidden(x, attn_bias, mode, drops)?;
        let out = linear(&pool(&g)?, &p.linear2_weight, &p.linear2_bias, mode)?;
        Ok((pool(&x)? + out)?)
    }

    /// The layer up to its output projection: the residual stream after the attention block, and
    /// the feed-forward hidden layer after GELU (and its dropout).
    fn to_hidden(
        &self,
        x: &Tensor,
        attn_bias: &Tensor,
        mode: Mode,
        drops: &mut DropoutDraws<'_>,
    ) -> Result<(Tensor, Tensor)> {
        let p = &self.params;
        let h = layer_norm(x, &p.norm1, mode)?;
        let h = self.self_attention(&h, attn_bias, mode, drops)?;
        let x = self.residual_dropout(x, &h, mode, drops)?;
        let h = layer_norm(&x, &p.norm2, mode)?;
        let h = linear(&h, &p.linear1_weight, &p.linear1_bias, mode)?;
        let g = self.gelu_dropout(&h, mode, drops)?;
        Ok((x, g))
    }

    /// `x + Dropout(h)`, as one op in training mode.
    fn residual_dropout(
        &self,
        x: &Tensor,
        h: &Tensor,
        mode: Mode,
        drops: &mut DropoutDraws<'_>,
    ) -> Result<Tensor> {
        if !mode.is_training() || self.dropout == 0.0 {
            return Ok((x + h)?);
        }
        let mask = self.draw_mask(h, h.shape().clone(), 1.0, drops)?;
        kernels::residual_masked_scale(x, h, &mask, 1.0 / (1.0 - self.dropout))
    }

    /// `Dropout(GELU(h))`, as one op in training mode.
    fn gelu_dropout(&self, h: &Tensor, mode: Mode, drops: &mut DropoutDraws<'_>) -> Result<Tensor> {
        if !mode.is_training() || self.dropout == 0.0 {
            return gelu(h);
        }
        let mask = self.draw_mask(h, h.shape().clone(), 1.0, drops)?;
        kernels::gelu_erf_masked(h, &mask, 1.0 / (1.0 - self.dropout))
    }

    fn self_attention(
        &self,
        x: &Tensor,
        attn_bias: &Tensor,
        mode: Mode,
        drops: &mut DropoutDraws<'_>,
    ) -> Result<Tensor> {
        let p = &self.params;
        let (b, t, w) = x.dims3()?;
        let hd = w / self.heads;
        // One product with the packed in-projection gives each position's q, k and v side by
        // side; the attention op reads the heads in place and returns one packed gradient.
        let qkv = linear(x, &p.in_proj_weight, &p.in_proj_bias, mode)?;
        let bias = attn_bias.broadcast_as((b, 1, t, t))?;
        let scale = 1.0 / (hd as f64).sqrt();
        // Dropout on the attention probabilities (training mode) as a mask the fused attention
        // multiplies in, drawn at the same point of the random stream as a separate dropout.
        let keep = match mode.is_training() && self.dropout > 0.0 {
            true => Some(self.keep_mask(&qkv, (b, self.heads, t, t), drops)?),
            false => None,
        };
        let out = kernels::packed_attention(&qkv, self.heads, &bias, scale, keep.as_ref())?;
        linear(&out, &p.out_proj_weight, &p.out_proj_bias, mode)
    }

    /// Inverted dropout's factors, 0 or `1 / (1 − p)`, of `shape` in `like`'s dtype and device.
    fn keep_mask(
        &self,
        like: &Tensor,
        shape: (usize, usize, usize, usize),
        drops: &mut DropoutDraws<'_>,
    ) -> Result<Tensor> {
        self.draw_mask(like, shape, 1.0 / (1.0 - self.dropout), drops)
    }

    /// The next mask of the dropout stream, `keep` where an element is kept and 0 elsewhere, of
    /// `shape` in `like`'s dtype and device. f32 masks are written with their final values; other
    /// dtypes are scaled after the conversion, so that `keep` is exact in them.
    fn draw_mask(
        &self,
        like: &Tensor,
        shape: impl Into<candle_core::Shape>,
        keep: f64,
        drops: &mut DropoutDraws<'_>,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let f32_mask = like.dtype() == DType::F32;
        let written = if f32_mask { keep as f32 } else { 1.0 };
        let mask = drops.next(shape.elem_count(), written)?;
        let mask = Tensor::from_vec(mask, shape, &candle_core::Device::Cpu)?
            .to_device(like.device())?
            .to_dtype(like.dtype())?;
        match f32_mask || keep == 1.0 {
            true => Ok(mask),
            false => Ok(mask.affine(keep, 0.0)?),
        }
    }
}

/// The encoder `layers` on `x` `[rows, len, width]` as one fused op (f32 on the CPU), pooled under
/// `mask`: each layer's dropout masks are drawn from `drops` in layer order, and the parameters'
/// gradients go to `sink` during the backward pass (none when frozen).
pub(super) fn fused_stack(
    layers: &[EncoderLayer],
    x: &Tensor,
    mask: &PoolingMask,
    rows: (usize, usize),
    mode: Mode,
    drops: &mut DropoutDraws<'_>,
    sink: Option<ParamGrads>,
) -> Result<Tensor> {
    let stack = layers
        .iter()
        .map(|layer| layer.stack_layer(rows, mode, drops))
        .collect::<Result<Vec<_>>>()?;
    let weights = mask
        .weights
        .flatten_all()?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?;
    encoder_stack(x, stack, &StackPool { weights }, LAYER_NORM_EPS, sink)
}

/// `x Wᵀ + b`; with frozen parameters ([`Mode::Frozen`]) the backward computes the input gradient
/// only.
fn linear(x: &Tensor, weight: &Var, bias: &Var, mode: Mode) -> Result<Tensor> {
    if mode == Mode::Frozen {
        return kernels::frozen_linear(x, weight.as_tensor(), Some(bias.as_tensor()));
    }
    kernels::linear(x, &mode.param(weight), Some(&mode.param(bias)))
}

/// LayerNorm over the last dimension with biased variance (fused, with its own backward, for f32
/// on the CPU; composed otherwise: candle's `ops::layer_norm` drops gradients).
fn layer_norm(x: &Tensor, (weight, bias): &(Var, Var), mode: Mode) -> Result<Tensor> {
    kernels::layer_norm(x, &mode.param(weight), &mode.param(bias), LAYER_NORM_EPS)
}
