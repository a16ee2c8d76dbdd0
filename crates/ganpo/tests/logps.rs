//! The fused label log-prob op against its differentiable composition (values and gradients),
//! and `sequence_logps`' shift/mask convention against a hand computation.

mod common;

use candle_core::{D, DType, Device, Tensor, Var};
use common::assert_close;
use ganpo::kernels::label_logprobs;
use ganpo::logps::sequence_logps;

fn random_logits(b: usize, t: usize, v: usize, seed: u64) -> Tensor {
    // A simple LCG keeps the test independent of RNG crate versions.
    let mut state = seed;
    let data: Vec<f32> = (0..b * t * v)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 8.0
        })
        .collect();
    Tensor::from_vec(data, (b, t, v), &Device::Cpu).unwrap()
}

#[test]
fn fused_op_matches_log_softmax_gather_in_value_and_gradient() {
    let (b, t, v) = (3, 5, 17);
    let logits = Var::from_tensor(&random_logits(b, t, v, 7)).unwrap();
    let labels: Vec<u32> = (0..(b * t) as u32)
        .map(|i| (i * 7 + 3) % v as u32)
        .collect();
    let labels = Tensor::from_vec(labels, (b, t), &Device::Cpu).unwrap();
    let weights = random_logits(b, t, 1, 11).squeeze(2).unwrap();

    let fused = label_logprobs(logits.as_tensor(), &labels).unwrap();
    let reference = candle_nn::ops::log_softmax(logits.as_tensor(), D::Minus1)
        .unwrap()
        .gather(&labels.unsqueeze(2).unwrap(), 2)
        .unwrap()
        .squeeze(2)
        .unwrap();
    assert_close(&fused, &reference, 1e-6, "label log-probs");

    let g_fused = (fused * &weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g_ref = (reference * &weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(
        g_fused.get(&logits).unwrap(),
        g_ref.get(&logits).unwrap(),
        1e-6,
        "logit gradients",
    );
}

#[test]
fn sequence_logps_shifts_labels_and_counts_completion_tokens() {
    let (b, t, v) = (2, 4, 5);
    let logits = random_logits(b, t, v, 3);
    let ids = Tensor::new(&[[1u32, 2, 3, 4], [4, 0, 2, 0]], &Device::Cpu).unwrap();
    // Row 0: tokens 2 and 3 are completion; row 1: token 1 and 2 (then padding).
    let mask = Tensor::new(&[[0f32, 0., 1., 1.], [0., 1., 1., 0.]], &Device::Cpu).unwrap();
    let seq = sequence_logps(&logits, &ids, &mask).unwrap();

    let l = logits
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec3::<f64>()
        .unwrap();
    let logp = |row: usize, pos: usize, tok: usize| {
        let lse = l[row][pos].iter().map(|x| x.exp()).sum::<f64>().ln();
        l[row][pos][tok] - lse
    };
    // Token t is predicted at position t − 1.
    let expected = [logp(0, 1, 3) + logp(0, 2, 4), logp(1, 0, 0) + logp(1, 1, 2)];
    let got = seq
        .logps
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() < 1e-5, "got {g}, expected {e}");
    }
    assert_eq!(seq.counts.to_vec1::<f32>().unwrap(), vec![2.0, 2.0]);
}

#[test]
fn mismatched_shapes_are_an_error_not_a_panic() {
    let logits = random_logits(2, 4, 5, 1);
    let ids = Tensor::zeros((2, 3), DType::U32, &Device::Cpu).unwrap();
    let mask = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
    assert!(sequence_logps(&logits, &ids, &mask).is_err());
    let bad_label = Tensor::new(&[[9u32, 0, 0, 0], [0, 0, 0, 0]], &Device::Cpu).unwrap();
    assert!(label_logprobs(&logits, &bad_label).is_err());
}
