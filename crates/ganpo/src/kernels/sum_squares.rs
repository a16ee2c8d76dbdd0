//! The sum of squares of a tensor's elements, read in place as f32 and accumulated in f64 (what a
//! global gradient norm needs), instead of first copying the tensor to f64.

use candle_core::{CpuStorage, DType, Storage, Tensor};
use rayon::prelude::*;

/// Elements per rayon task.
const CHUNK: usize = 1 << 16;

/// `Σ xᵢ²` over every element of `t`, accumulated in f64. Contiguous f32 CPU tensors are read in
/// place (in parallel, f64 partial sums); anything else goes through an f64 copy.
pub fn sum_of_squares(t: &Tensor) -> crate::Result<f64> {
    if t.device().is_cpu() && t.dtype() == DType::F32 {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(CpuStorage::F32(data)), Some((a, b))) =
            (&*storage, layout.contiguous_offsets())
        {
            return Ok(data[a..b]
                .par_chunks(CHUNK)
                .map(|c| c.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
                .sum());
        }
    }
    Ok(t.to_dtype(DType::F64)?
        .sqr()?
        .sum_all()?
        .to_scalar::<f64>()?)
}
