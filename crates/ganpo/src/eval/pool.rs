//! Mean pooling of last hidden states over the real (non-padding) tokens of each sequence: the
//! per-sequence latent summary that the MMD and the linear probe compare.

use candle_core::{DType, Tensor};

use crate::{Error, Result};

/// Mean of `hidden` (`[n, T, d]`) over the positions where `attention_mask` (`[n, T]`) is 1, one
/// `d`-vector per sequence, in f64. A sequence without real tokens is an error (it has no latent).
pub fn mean_pool(hidden: &Tensor, attention_mask: &Tensor) -> Result<Vec<Vec<f64>>> {
    let (n, t, _) = hidden.dims3()?;
    if attention_mask.dims() != [n, t] {
        return Err(Error::Config(format!(
            "mean_pool: hidden states {:?} and attention mask {:?} disagree",
            hidden.dims(),
            attention_mask.dims()
        )));
    }
    let mask = attention_mask.to_dtype(DType::F64)?;
    let counts = mask.sum(1)?.to_vec1::<f64>()?;
    if let Some(row) = counts.iter().position(|&c| c <= 0.0) {
        return Err(Error::Config(format!(
            "mean_pool: sequence {row} has no real tokens to pool"
        )));
    }
    let summed = hidden
        .detach()
        .to_dtype(DType::F64)?
        .broadcast_mul(&mask.unsqueeze(2)?)?
        .sum(1)?
        .to_vec2::<f64>()?;
    Ok(summed
        .into_iter()
        .zip(counts)
        .map(|(row, c)| row.into_iter().map(|v| v / c).collect())
        .collect())
}
