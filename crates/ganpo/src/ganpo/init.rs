//! Fresh discriminator tensors drawn from a seed, with the distributions the authors' code uses.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use super::config::DiscriminatorConfig;
use super::layout::{Init, tensor_specs};
use super::rng::SplitMix64;
use crate::Result;

/// Every tensor of a fresh discriminator (parameters and u/v), f64 on the CPU, keyed as
/// [`tensor_specs`] names them. Draws happen in the specs' order from one SplitMix64 stream.
///
/// As in torch, the u/v vectors are independent unit vectors (not derived from the weights), and
/// `in_proj_weight` is identical in every encoder layer (see [`Init::SharedXavierUniform`]).
pub fn initial_tensors(
    config: &DiscriminatorConfig,
    input_dim: usize,
    seed: u64,
) -> Result<HashMap<String, Tensor>> {
    let mut rng = SplitMix64::new(seed);
    let mut shared: Option<Vec<f64>> = None;
    let mut out = HashMap::new();
    for spec in tensor_specs(config, input_dim) {
        let n: usize = spec.shape.iter().product();
        let values = match spec.init {
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::Normal(std) => (0..n).map(|_| std * rng.normal()).collect(),
            Init::XavierUniform => xavier_uniform(&mut rng, &spec.shape),
            Init::SharedXavierUniform => shared
                .get_or_insert_with(|| xavier_uniform(&mut rng, &spec.shape))
                .clone(),
            Init::UnitNormal => {
                let v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
                // torch's F.normalize: x / max(‖x‖, 1e-12).
                let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                v.into_iter().map(|x| x / norm).collect()
            }
        };
        let tensor = Tensor::from_vec(values, spec.shape.as_slice(), &Device::Cpu)?;
        out.insert(spec.name, tensor);
    }
    Ok(out)
}

/// `xavier_uniform_` on a `[fan_out, fan_in]` matrix.
fn xavier_uniform(rng: &mut SplitMix64, shape: &[usize]) -> Vec<f64> {
    let (fan_out, fan_in) = (shape[0], shape[1]);
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    (0..fan_out * fan_in)
        .map(|_| bound * (2.0 * rng.uniform() - 1.0))
        .collect()
}
