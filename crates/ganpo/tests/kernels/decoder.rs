//! The decoder's kernels: RMSNorm, rotary embeddings, the masked softmax, gated activations and
//! their down projection, the residual product, the chunked LM head and the sum of squares.

use super::*;

#[test]
fn rms_norm_matches_composition() {
    for add_one in [false, true] {
        let x = tensor(&[3, 5, 67], 1, 2.0);
        let w = tensor(&[67], 2, 1.0);
        check(
            &format!("rms_norm add_one={add_one}"),
            &[x, w],
            |t| kernels::rms_norm(&t[0], &t[1], 1e-6, add_one).unwrap(),
            |t| kernels::rms_norm_composed(&t[0], &t[1], 1e-6, add_one).unwrap(),
            2e-6,
        );
    }
}

#[test]
fn rms_norm_is_fused_only_for_f32_on_cpu() {
    // f64 goes through the composition: identical to calling it directly.
    let x = tensor(&[2, 8], 3, 1.0).to_dtype(DType::F64).unwrap();
    let w = tensor(&[8], 4, 1.0).to_dtype(DType::F64).unwrap();
    let a = kernels::rms_norm(&x, &w, 1e-5, false).unwrap();
    let b = kernels::rms_norm_composed(&x, &w, 1e-5, false).unwrap();
    assert_eq!(max_rel_diff(&a, &b), 0.0);
}

#[test]
fn rope_matches_composition_per_position_and_per_row() {
    let x = tensor(&[2, 3, 7, 16], 5, 1.0);
    let cos = tensor(&[7, 8], 6, 1.0);
    let sin = tensor(&[7, 8], 7, 1.0);
    let rope = |t: &[Tensor], c: &Tensor, s: &Tensor, fused: bool| {
        let (c, s) = (
            c.to_dtype(t[0].dtype()).unwrap(),
            s.to_dtype(t[0].dtype()).unwrap(),
        );
        if fused {
            kernels::rope(&t[0], &c, &s).unwrap()
        } else {
            kernels::rope_composed(&t[0], &c, &s).unwrap()
        }
    };
    check(
        "rope per position",
        std::slice::from_ref(&x),
        |t| rope(t, &cos, &sin, true),
        |t| rope(t, &cos, &sin, false),
        1e-6,
    );
    let cos_rows = tensor(&[2, 7, 8], 8, 1.0);
    let sin_rows = tensor(&[2, 7, 8], 9, 1.0);
    check(
        "rope per row",
        &[x],
        |t| rope(t, &cos_rows, &sin_rows, true),
        |t| rope(t, &cos_rows, &sin_rows, false),
        1e-6,
    );
}

#[test]
fn masked_softmax_matches_composition() {
    let (b, h, q, k) = (2, 3, 5, 9);
    let scores = tensor(&[b, h, q, k], 10, 4.0);
    // A causal + padding style mask with one fully masked row.
    let mut mask = vec![0f32; b * q * k];
    for (i, m) in mask.iter_mut().enumerate() {
        let (batch, query, key) = (i / (q * k), (i / k) % q, i % k);
        if key > query + 4 || (batch == 1 && key == 0) || (batch == 1 && query == 2) {
            *m = -1e30;
        }
    }
    let mask = Tensor::from_vec(mask, (b, 1, q, k), &Device::Cpu).unwrap();
    check(
        "masked_softmax",
        &[scores],
        |t| kernels::masked_softmax(&t[0], &mask, 0.125).unwrap(),
        |t| {
            let m = mask.to_dtype(t[0].dtype()).unwrap();
            kernels::masked_softmax_composed(&t[0], &m, 0.125).unwrap()
        },
        2e-6,
    );
}

#[test]
fn gated_activations_match_composition() {
    for act in [Activation::Silu, Activation::GeluTanh, Activation::Gelu] {
        let gate = tensor(&[4, 6, 33], 11, 5.0);
        let up = tensor(&[4, 6, 33], 12, 2.0);
        check(
            &format!("glu {act:?}"),
            &[gate, up],
            |t| kernels::gated_activation(&t[0], &t[1], act).unwrap(),
            |t| kernels::gated_activation_composed(&t[0], &t[1], act).unwrap(),
            5e-6,
        );
    }
}

/// `residual + x Wᵀ` as one op against the sum of the two ops it replaces, in f64.
#[test]
fn linear_with_residual_matches_composition() {
    let x = tensor(&[3, 11, 24], 41, 1.0);
    let weight = tensor(&[30, 24], 42, 0.5);
    let residual = tensor(&[3, 11, 30], 43, 1.0);
    check(
        "linear with residual",
        &[x, weight, residual],
        |t| kernels::linear_residual(&t[0], &t[1], &t[2]).unwrap(),
        |t| (&t[2] + kernels::linear_composed(&t[0], &t[1], None).unwrap()).unwrap(),
        5e-6,
    );
}

/// The activation and down projection as one op (the activation recomputed in backward) against
/// the two ops it replaces, in f64; the shapes take `gemm`'s write-only path in every product.
#[test]
fn gated_down_projection_matches_composition() {
    for act in [Activation::Silu, Activation::GeluTanh, Activation::Gelu] {
        let gate = tensor(&[3, 12, 40], 21, 4.0);
        let up = tensor(&[3, 12, 40], 22, 2.0);
        let weight = tensor(&[20, 40], 23, 0.5);
        check(
            &format!("gated down {act:?}"),
            &[gate, up, weight],
            |t| kernels::gated_down(&t[0], &t[1], &t[2], act).unwrap(),
            |t| kernels::gated_down_composed(&t[0], &t[1], &t[2], act).unwrap(),
            5e-6,
        );
    }
}

/// With a constant (frozen) weight the op computes no weight gradient, and the input gradients
/// are unchanged.
#[test]
fn gated_down_projection_with_a_constant_weight() {
    let gate = Var::from_tensor(&tensor(&[2, 4, 16], 31, 3.0)).unwrap();
    let up = Var::from_tensor(&tensor(&[2, 4, 16], 32, 2.0)).unwrap();
    let weight = tensor(&[5, 16], 33, 0.5);
    let probe = tensor(&[2, 4, 5], 34, 1.0);
    let grads = |y: Tensor| (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
    let (g, u) = (gate.as_tensor(), up.as_tensor());
    let fused = grads(kernels::gated_down(g, u, &weight, Activation::Silu).unwrap());
    let composed = grads(kernels::gated_down_composed(g, u, &weight, Activation::Silu).unwrap());
    assert!(fused.get(&weight).is_none(), "no gradient for a constant");
    for v in [&gate, &up] {
        let err = max_rel_diff(fused.get(v).unwrap(), composed.get(v).unwrap());
        assert!(err < 1e-5, "input gradient differs by {err:e}");
    }
}

#[test]
fn lm_head_logps_match_full_logits_across_chunks() {
    // 300 rows span two 256-row chunks; every third row is inactive (prompt or padding).
    let (rows, d, vocab) = (300, 16, 50);
    let labels: Vec<u32> = (0..rows).map(|r| (r * 7 % vocab) as u32).collect();
    let active: Vec<bool> = (0..rows).map(|r| r % 3 != 0).collect();
    for softcap in [None, Some(3.0)] {
        let hidden = tensor(&[rows, d], 20, 1.0);
        let weight = tensor(&[vocab, d], 21, 1.0);
        let name = format!("lm_head_logps softcap={softcap:?}");
        check(
            &name,
            &[hidden.clone(), weight.clone()],
            |t| {
                kernels::lm_head_logps(&t[0], &t[1], &labels, &active, softcap)
                    .unwrap()
                    .logps
            },
            |t| {
                kernels::lm_head_logps_composed(&t[0], &t[1], &labels, &active, softcap)
                    .unwrap()
                    .logps
            },
            2e-6,
        );
        let fused = kernels::lm_head_logps(&hidden, &weight, &labels, &active, softcap).unwrap();
        let f64s = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        let reference = kernels::lm_head_logps_composed(
            &f64s(&hidden),
            &f64s(&weight),
            &labels,
            &active,
            softcap,
        )
        .unwrap();
        let err = max_rel_diff(&fused.mean_logits, &reference.mean_logits);
        assert!(err < 2e-6, "{name}: mean logits differ by {err:e}");
        let logps: Vec<f32> = fused.logps.to_vec1().unwrap();
        assert!(logps.iter().zip(&active).all(|(l, a)| *a || *l == 0.0));
    }
}

#[test]
fn lm_head_logps_reject_labels_outside_the_vocabulary() {
    let hidden = tensor(&[2, 4], 1, 1.0);
    let weight = tensor(&[5, 4], 2, 1.0);
    let err = kernels::lm_head_logps(&hidden, &weight, &[1, 5], &[true, true], None).unwrap_err();
    assert!(
        err.to_string()
            .contains("label 5 outside the vocabulary of 5"),
        "{err}"
    );
    // An inactive row's label is never read.
    assert!(kernels::lm_head_logps(&hidden, &weight, &[1, 5], &[true, false], None).is_ok());
}

#[test]
fn sum_of_squares_matches_an_f64_sum_for_contiguous_and_strided_tensors() {
    // Large enough to span several parallel chunks, with an uneven tail.
    let t = tensor(&[3, 70_001], 11, 2.0);
    let expected: f64 = values(3 * 70_001, 11, 2.0)
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum();
    let got = kernels::sum_of_squares(&t).unwrap();
    assert!(
        (got - expected).abs() <= 1e-12 * expected,
        "{got} vs {expected}"
    );
    // A transposed (non-contiguous) view and a narrowed one take the fallback path.
    let tt = t.t().unwrap();
    assert!(!tt.is_contiguous());
    let got_t = kernels::sum_of_squares(&tt).unwrap();
    assert!((got_t - expected).abs() <= 1e-12 * expected);
    let row = t.narrow(0, 1, 1).unwrap();
    let expected_row: f64 = values(3 * 70_001, 11, 2.0)[70_001..140_002]
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum();
    let got_row = kernels::sum_of_squares(&row).unwrap();
    assert!((got_row - expected_row).abs() <= 1e-12 * expected_row);
}
