//! Helpers shared by the integration tests: fixture paths and tensor comparison.
#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(rel)
}

/// Loads every tensor of a safetensors fixture.
pub fn load_golden(path: &std::path::Path) -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).expect("golden fixture loads")
}

/// `max |a − b| / max |b|`: the error relative to the scale of the expected tensor.
pub fn rel_err(actual: &Tensor, expected: &Tensor) -> f64 {
    assert_eq!(actual.dims(), expected.dims(), "shapes differ");
    let a = actual.to_dtype(DType::F64).unwrap();
    let b = expected.to_dtype(DType::F64).unwrap();
    let diff = (a - &b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let scale = b
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
        .max(1e-12);
    diff / scale
}

/// Asserts `rel_err(actual, expected) <= tol`, naming `what`.
pub fn assert_close(actual: &Tensor, expected: &Tensor, tol: f64, what: &str) {
    let err = rel_err(actual, expected);
    eprintln!("{what}: rel err {err:.3e}");
    assert!(
        err <= tol,
        "{what}: relative error {err:.3e} exceeds {tol:.1e}"
    );
}

/// The tiny model fixtures of every supported architecture variant (`tools/golden/models.py`).
pub const VARIANTS: [&str; 7] = [
    "llama",
    "llama3_scaled_tied",
    "qwen2",
    "qwen2_tied",
    "mistral",
    "gemma",
    "gemma2",
];
