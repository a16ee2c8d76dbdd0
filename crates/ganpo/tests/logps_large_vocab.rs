//! `label_logprobs` over a real-size vocabulary against an f64 reference: the log-sum-exp of a
//! 49,152-entry row must be accurate to f32 rounding, not to the drift of a sequential f32 sum
//! (which was ~1e-4 per token on SmolLM2, found while checking the GGUF loader; docs/smollm2.md).

use candle_core::{Device, Tensor};
use ganpo::kernels::label_logprobs;

/// Deterministic logits spread like a trained LM's (a few large, most small), no RNG crate needed.
fn logits(rows: usize, vocab: usize) -> Vec<f32> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..rows * vocab)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32; // uniform [0, 1)
            12.0 * u * u * u - 2.0
        })
        .collect()
}

#[test]
fn log_sum_exp_over_a_large_vocabulary_is_accurate() {
    let (rows, vocab) = (4, 49_152);
    let x = logits(rows, vocab);
    let labels: Vec<u32> = vec![7, 1_000, 30_000, 49_151];
    let t = Tensor::from_vec(x.clone(), (1, rows, vocab), &Device::Cpu).unwrap();
    let l = Tensor::from_vec(labels.clone(), (1, rows), &Device::Cpu).unwrap();
    let got: Vec<f32> = label_logprobs(&t, &l)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    for (r, &label) in labels.iter().enumerate() {
        let row = &x[r * vocab..(r + 1) * vocab];
        let max = row
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, |m, v| m.max(f64::from(v)));
        let lse = max
            + row
                .iter()
                .map(|&v| (f64::from(v) - max).exp())
                .sum::<f64>()
                .ln();
        let want = f64::from(row[label as usize]) - lse;
        // f32 rounding of a value of magnitude ~10 is ~1e-6.
        let err = (f64::from(got[r]) - want).abs();
        assert!(
            err <= 4e-6,
            "row {r}: got {}, want {want} (error {err})",
            got[r]
        );
    }
}
