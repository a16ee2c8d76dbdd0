//! Evaluation metrics against NumPy / PyTorch (fixture from `tools/golden/eval.py`) and invariants.

mod common;

use candle_core::{Device, Tensor};
use ganpo::eval::kl::{sequence_kl_estimate, token_kl};
use ganpo::eval::mmd::{median_sq_distance, mmd2_unbiased};
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("eval/golden.json")).unwrap())
        .unwrap()
}

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn mmd_with_median_heuristic_matches_numpy() {
    let g = golden();
    let (x, y) = (matrix(&g["x"]), matrix(&g["y"]));
    let s2 = median_sq_distance(&x, &y);
    assert!((s2 - g["median_sq_distance"].as_f64().unwrap()).abs() < 1e-12);
    let mmd = mmd2_unbiased(&x, &y, s2).unwrap();
    assert!((mmd - g["mmd2"].as_f64().unwrap()).abs() < 1e-12, "{mmd}");
    // Identical sets: the unbiased estimate is centred on 0 and small.
    let same = mmd2_unbiased(&x, &x, s2).unwrap();
    assert!(same.abs() < mmd.abs(), "{same} vs {mmd}");
    assert!(mmd2_unbiased(&x[..1], &y, s2).is_err());
}

#[test]
fn token_kl_matches_pytorch_and_is_zero_for_identical_models() {
    let g = golden();
    let t = |v: &Value| {
        let a: Vec<Vec<Vec<f32>>> = serde_json::from_value(v.clone()).unwrap();
        Tensor::new(a, &Device::Cpu).unwrap()
    };
    let (p, q) = (t(&g["policy_logits"]), t(&g["ref_logits"]));
    let mask: Vec<Vec<f32>> = serde_json::from_value(g["mask"].clone()).unwrap();
    let mask = Tensor::new(mask, &Device::Cpu).unwrap();
    let (kl, counts) = token_kl(&p, &q, &mask).unwrap();
    let expected: Vec<f32> = serde_json::from_value(g["token_kl"].clone()).unwrap();
    for (a, b) in kl.to_vec1::<f32>().unwrap().iter().zip(&expected) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
    assert_eq!(counts.to_vec1::<f32>().unwrap(), vec![2.0, 3.0]);
    let (zero, _) = token_kl(&p, &p, &mask).unwrap();
    assert!(
        zero.to_vec1::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.abs() < 1e-6)
    );
}

#[test]
fn sequence_kl_estimate_is_the_mean_log_ratio() {
    assert_eq!(
        sequence_kl_estimate(&[-3.0, -5.0], &[-4.0, -5.5]).unwrap(),
        0.75
    );
    assert!(sequence_kl_estimate(&[], &[]).is_err());
}
