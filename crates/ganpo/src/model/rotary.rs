//! Rotary position embeddings (RoPE) in Hugging Face's "rotate half" layout, with linear and
//! Llama-3 frequency scaling.

use candle_core::{DType, Device, Tensor};

use super::config::{ModelConfig, RopeScaling};
use crate::{Result, kernels};

/// Inverse frequencies `θ^(-2i/d)` for `i < d/2`, with the config's scaling applied.
pub fn inverse_frequencies(config: &ModelConfig) -> Vec<f64> {
    let dim = config.head_dim;
    // transformers computes `base ** (arange(0, dim, 2).float() / dim)` in float32; doing the same
    // keeps the angles bit-compatible at long positions.
    let base: Vec<f64> = (0..dim / 2)
        .map(|i| {
            let exponent = (2 * i) as f32 / dim as f32;
            (1.0f32 / (config.rope_theta as f32).powf(exponent)) as f64
        })
        .collect();
    match &config.rope_scaling {
        None => base,
        Some(RopeScaling::Linear { factor }) => base.iter().map(|f| f / factor).collect(),
        Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        }) => {
            let low_wavelen = original_max_position_embeddings / low_freq_factor;
            let high_wavelen = original_max_position_embeddings / high_freq_factor;
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (original_max_position_embeddings / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    }
}

/// Precomputed `cos` and `sin` tables of shape `[max_positions, head_dim / 2]`.
#[derive(Debug, Clone)]
pub struct Rotary {
    cos: Tensor,
    sin: Tensor,
}

impl Rotary {
    /// Tables for positions `0..max_positions`.
    pub fn new(
        config: &ModelConfig,
        max_positions: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let inv = inverse_frequencies(config);
        let half = inv.len();
        let mut cos = Vec::with_capacity(max_positions * half);
        let mut sin = Vec::with_capacity(max_positions * half);
        for p in 0..max_positions {
            for &f in &inv {
                // transformers forms the angle as a float32 product.
                let angle = (p as f32 * f as f32) as f64;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let cos = Tensor::from_vec(cos, (max_positions, half), device)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, (max_positions, half), device)?.to_dtype(dtype)?;
        Ok(Rotary { cos, sin })
    }

    /// Number of positions the tables cover.
    pub fn max_positions(&self) -> usize {
        self.cos.dim(0).unwrap_or(0)
    }

    /// Rotates `x` (`[batch, heads, seq, head_dim]`) with a position per row and step:
    /// `positions` is `[batch, seq]` u32 (used by cached decoding, where left-padded rows start
    /// at different positions).
    pub fn apply_at(&self, x: &Tensor, positions: &Tensor) -> Result<Tensor> {
        let (b, _, t, d) = x.dims4()?;
        let flat = positions.flatten_all()?;
        let table = |tab: &Tensor| -> Result<Tensor> {
            Ok(tab
                .index_select(&flat, 0)?
                .reshape((b, t, d / 2))?
                .to_dtype(x.dtype())?)
        };
        kernels::rope(x, &table(&self.cos)?, &table(&self.sin)?)
    }

    /// The `cos` and `sin` tables of positions `start..start + seq` (`[seq, head_dim / 2]` each) in
    /// `dtype`.
    pub fn tables(&self, start: usize, seq: usize, dtype: DType) -> Result<(Tensor, Tensor)> {
        let table =
            |t: &Tensor| -> Result<Tensor> { Ok(t.narrow(0, start, seq)?.to_dtype(dtype)?) };
        Ok((table(&self.cos)?, table(&self.sin)?))
    }
}
