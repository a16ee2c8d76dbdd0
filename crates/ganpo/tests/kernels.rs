//! Every fused kernel against its differentiable composition: values and gradients of a random
//! projection of the output, the fused kernel in f32 against the composition in f64 (so the
//! reference carries no f32 rounding of its own).

use candle_core::{DType, Device, Tensor, Var};
use ganpo::kernels;
use ganpo::model::Activation;

#[path = "kernels/attention.rs"]
mod attention;
#[path = "kernels/blocks.rs"]
mod blocks;
#[path = "kernels/decoder.rs"]
mod decoder;
#[path = "kernels/discriminator.rs"]
mod discriminator;
#[path = "kernels/project_heads.rs"]
mod project_heads;
#[path = "kernels/skinny.rs"]
mod skinny;

/// Deterministic pseudo-random values in roughly [-scale, scale].
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u64, scale: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(values(n, seed, scale), shape, &Device::Cpu).unwrap()
}

fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let a: Vec<f64> = a
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let b: Vec<f64> = b
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().map(|v| v.abs()).fold(1e-3, f64::max);
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / scale
}

/// Runs `f` on f32 vars (the fused path) and on f64 vars (the composition), backpropagates
/// `Σ out ⊙ probe` through both, and compares outputs and every input's gradient.
fn check(
    name: &str,
    inputs: &[Tensor],
    fused: impl Fn(&[Tensor]) -> Tensor,
    composed: impl Fn(&[Tensor]) -> Tensor,
    tol: f64,
) {
    let f32_vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let f64_vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(&t.to_dtype(DType::F64).unwrap()).unwrap())
        .collect();
    let a = fused(
        &f32_vars
            .iter()
            .map(|v| v.as_tensor().clone())
            .collect::<Vec<_>>(),
    );
    let b = composed(
        &f64_vars
            .iter()
            .map(|v| v.as_tensor().clone())
            .collect::<Vec<_>>(),
    );
    assert_eq!(a.dims(), b.dims(), "{name}: shapes");
    let out_err = max_rel_diff(&a, &b);
    assert!(out_err < tol, "{name}: output differs by {out_err:e}");
    let probe = tensor(a.dims(), 99, 1.0);
    let ga = (&a * &probe)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gb = (&b * &probe.to_dtype(DType::F64).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (i, (va, vb)) in f32_vars.iter().zip(&f64_vars).enumerate() {
        let da = ga
            .get(va)
            .unwrap_or_else(|| panic!("{name}: no fused gradient for input {i}"));
        let db = gb
            .get(vb)
            .unwrap_or_else(|| panic!("{name}: no reference gradient for input {i}"));
        let err = max_rel_diff(da, db);
        assert!(
            err < tol,
            "{name}: gradient of input {i} differs by {err:e}"
        );
        assert!(
            da.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0,
            "{name}: gradient of input {i} is zero"
        );
    }
}

fn bits(t: &Tensor) -> Vec<u32> {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    v.into_iter().map(f32::to_bits).collect()
}

/// A 0/1 dropout mask of `shape` keeping about 70 % of the elements.
fn dropout_mask(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    let keep: Vec<f32> = values(n, seed, 1.0)
        .iter()
        .map(|&v| if v > -0.6 { 1.0 } else { 0.0 })
        .collect();
    Tensor::from_vec(keep, shape, &Device::Cpu).unwrap()
}
