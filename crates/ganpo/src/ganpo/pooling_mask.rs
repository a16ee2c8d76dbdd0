//! The discriminator's `[B, T]` mask, validated once and turned into an attention bias and pooling weights.
//!
//! Positions where the mask is 1 are attended to (as keys) and averaged by the mean pool; positions
//! where it is 0 are excluded from both, as the authors' `forward(hidden_states, mask)` does with
//! `src_key_padding_mask = (mask == 0)` and a masked mean. An all-ones mask reproduces their unmasked
//! call, which attends to and pools over every position, padding included.

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// Added to the attention scores of masked keys. Finite, so no `inf − inf` can reach the backward
/// pass; `exp` of it underflows to exactly 0 in f32 and f64.
const MASKED: f64 = -1.0e30;

/// A validated pooling mask for one batch.
#[derive(Debug, Clone)]
pub struct PoolingMask {
    /// `[B, 1, 1, T]`: 0 for attended keys, a large negative number for masked ones.
    pub attention_bias: Tensor,
    /// `[B, 1, T]`: 1 for pooled positions, 0 elsewhere.
    pub weights: Tensor,
    /// `[B, 1]`: the number of pooled positions of each sequence.
    pub counts: Tensor,
}

impl PoolingMask {
    /// Checks that `mask` is `[batch, seq]`, holds only 0 and 1 (any dtype), and keeps at least one
    /// position per sequence; builds the tensors in `dtype` on `device`.
    pub fn new(
        mask: &Tensor,
        batch: usize,
        seq: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let bad = |message: String| Err(Error::data("discriminator mask", message));
        if mask.dims() != [batch, seq] {
            return bad(format!(
                "expected shape [{batch}, {seq}] to match the latents, got {:?}",
                mask.dims()
            ));
        }
        let rows = mask.to_dtype(DType::F64)?.to_vec2::<f64>()?;
        let mut bias = Vec::with_capacity(batch * seq);
        let mut weights = Vec::with_capacity(batch * seq);
        let mut counts = Vec::with_capacity(batch);
        for (b, row) in rows.iter().enumerate() {
            if let Some(v) = row.iter().find(|&&v| v != 0.0 && v != 1.0) {
                return bad(format!("row {b} holds {v}; a pooling mask must be 0 or 1"));
            }
            let count = row.iter().sum::<f64>();
            if count == 0.0 {
                return bad(format!(
                    "row {b} masks every position; each sequence needs at least one position to pool"
                ));
            }
            bias.extend(row.iter().map(|&v| if v == 1.0 { 0.0 } else { MASKED }));
            weights.extend_from_slice(row);
            counts.push(count);
        }
        let make = |data: Vec<f64>, shape: &[usize]| -> Result<Tensor> {
            Ok(Tensor::from_vec(data, shape, &Device::Cpu)?
                .to_dtype(dtype)?
                .to_device(device)?)
        };
        Ok(PoolingMask {
            attention_bias: make(bias, &[batch, 1, 1, seq])?,
            weights: make(weights, &[batch, 1, seq])?,
            counts: make(counts, &[batch, 1])?,
        })
    }

    /// The masks of several batches with the same sequence length, stacked along the batch.
    pub fn cat(masks: &[PoolingMask]) -> Result<Self> {
        let part = |f: fn(&PoolingMask) -> &Tensor| -> Result<Tensor> {
            let parts: Vec<&Tensor> = masks.iter().map(f).collect();
            Ok(Tensor::cat(&parts, 0)?)
        };
        Ok(PoolingMask {
            attention_bias: part(|m| &m.attention_bias)?,
            weights: part(|m| &m.weights)?,
            counts: part(|m| &m.counts)?,
        })
    }

    /// Masked mean over positions of `x` `[B, T, W]` → `[B, W]`: the weights `[B, 1, T]` times `x`,
    /// one product per sequence (a broadcast multiply and sum would keep a `[B, T, W]` product for
    /// the backward pass and reduce it again there, on one thread).
    pub fn pool(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self
            .weights
            .matmul(x)?
            .squeeze(1)?
            .broadcast_div(&self.counts)?)
    }
}
