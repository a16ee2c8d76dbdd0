//! The f32 matrix-product rate this process reaches, measured next to the step so that achieved
//! GFLOP/s can be read as a fraction of what the same build on the same machine can do.

use std::time::Instant;

use candle_core::{Device, Tensor};
use ganpo::Result;
use ganpo::model::ModelConfig;
use serde::{Deserialize, Serialize};

/// The best rate of one product shape `[m, k] · [k, n]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatmulTiming {
    /// What the shape is.
    pub label: String,
    /// Rows of the left operand.
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Columns of the result.
    pub n: usize,
    /// Best GFLOP/s over the repetitions (`2 m k n` FLOPs per product).
    pub gflops: f64,
}

/// A square 1024³ product and the step's own largest shapes for `tokens` tokens (`2B · T`): the
/// MLP's up projection and the LM head.
pub fn matmul_shapes(model: &ModelConfig, tokens: usize) -> Vec<(String, usize, usize, usize)> {
    let (d, f, v) = (model.hidden_size, model.intermediate_size, model.vocab_size);
    vec![
        ("square".to_string(), 1024, 1024, 1024),
        ("mlp up".to_string(), tokens, d, f),
        ("lm head".to_string(), tokens, d, v),
    ]
}

/// Times `x · wᵀ` with `x: [m, k]` and `w: [n, k]` (the layout a linear layer multiplies in) after
/// one warm-up product, repeating until at least 3 products and 0.3 s; returns the best GFLOP/s.
pub fn time_matmul(m: usize, k: usize, n: usize, device: &Device) -> Result<f64> {
    let x = Tensor::randn(0f32, 1.0, (m, k), device)?;
    let w = Tensor::randn(0f32, 1.0, (n, k), device)?;
    let wt = w.t()?;
    let flops = 2.0 * (m * k * n) as f64;
    x.matmul(&wt)?;
    let (mut best, mut reps, started) = (0.0f64, 0, Instant::now());
    while reps < 3 || (started.elapsed().as_secs_f64() < 0.3 && reps < 50) {
        let t0 = Instant::now();
        let y = x.matmul(&wt)?;
        let secs = t0.elapsed().as_secs_f64();
        drop(y);
        best = best.max(flops / secs / 1e9);
        reps += 1;
    }
    Ok(best)
}

/// Times every shape of [`matmul_shapes`].
pub fn measure_peak(
    model: &ModelConfig,
    tokens: usize,
    device: &Device,
) -> Result<Vec<MatmulTiming>> {
    matmul_shapes(model, tokens)
        .into_iter()
        .map(|(label, m, k, n)| {
            Ok(MatmulTiming {
                gflops: time_matmul(m, k, n, device)?,
                label,
                m,
                k,
                n,
            })
        })
        .collect()
}
