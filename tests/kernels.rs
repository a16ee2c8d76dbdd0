//! Every fused kernel against its differentiable composition: values and gradients of a random
//! projection of the output, the fused kernel in f32 against the composition in f64 (so the
//! reference carries no f32 rounding of its own).

use candle_core::{DType, Device, Tensor, Var};
use ganpo::kernels;
use ganpo::model::Activation;

#[path = "kernels/project_heads.rs"]
mod project_heads;

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

#[test]
fn layer_norm_matches_composition() {
    let x = tensor(&[3, 5, 67], 21, 3.0);
    let w = tensor(&[67], 22, 1.0);
    let b = tensor(&[67], 23, 0.5);
    check(
        "layer_norm",
        &[x, w, b],
        |t| kernels::layer_norm(&t[0], &t[1], &t[2], 1e-5).unwrap(),
        |t| kernels::layer_norm_composed(&t[0], &t[1], &t[2], 1e-5).unwrap(),
        5e-6,
    );
}

#[test]
fn gelu_erf_matches_composition() {
    let x = tensor(&[7, 4099], 31, 6.0);
    check(
        "gelu_erf",
        &[x],
        |t| kernels::gelu_erf(&t[0]).unwrap(),
        |t| kernels::gelu_erf_composed(&t[0]).unwrap(),
        5e-6,
    );
}

#[test]
fn masked_scale_matches_composition_and_leaves_the_mask_without_gradient() {
    let x = tensor(&[5, 999], 41, 3.0);
    let mask = Tensor::from_vec(
        values(5 * 999, 42, 1.0)
            .iter()
            .map(|&v| if v > -0.6 { 1f32 } else { 0.0 })
            .collect::<Vec<_>>(),
        (5, 999),
        &Device::Cpu,
    )
    .unwrap();
    let m64 = mask.to_dtype(DType::F64).unwrap();
    check(
        "masked_scale",
        std::slice::from_ref(&x),
        |t| kernels::masked_scale(&t[0], &mask, 1.0 / 0.9).unwrap(),
        |t| kernels::masked_scale_composed(&t[0], &m64, 1.0 / 0.9).unwrap(),
        1e-6,
    );
    let mask_var = Var::from_tensor(&mask).unwrap();
    let y = kernels::masked_scale(&x, mask_var.as_tensor(), 2.0).unwrap();
    assert!(
        !y.track_op(),
        "an untracked input with a constant mask builds no graph"
    );
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

#[test]
fn gelu_with_dropout_matches_composition_and_the_unfused_ops_bit_for_bit() {
    let x = tensor(&[6, 2053], 43, 5.0);
    let mask = dropout_mask(&[6, 2053], 44);
    let m64 = mask.to_dtype(DType::F64).unwrap();
    check(
        "gelu_erf_masked",
        std::slice::from_ref(&x),
        |t| kernels::gelu_erf_masked(&t[0], &mask, 1.0 / 0.9).unwrap(),
        |t| {
            kernels::masked_scale_composed(
                &kernels::gelu_erf_composed(&t[0]).unwrap(),
                &m64,
                1.0 / 0.9,
            )
            .unwrap()
        },
        5e-6,
    );
    let (xa, xb) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&x).unwrap());
    let fused = kernels::gelu_erf_masked(xa.as_tensor(), &mask, 1.0 / 0.9).unwrap();
    let unfused = kernels::masked_scale(
        &kernels::gelu_erf(xb.as_tensor()).unwrap(),
        &mask,
        1.0 / 0.9,
    )
    .unwrap();
    let probe = tensor(fused.dims(), 45, 1.0);
    let ga = (&fused * &probe)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gb = (&unfused * &probe)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(bits(&fused), bits(&unfused));
    assert_eq!(
        bits(ga.get(xa.as_tensor()).unwrap()),
        bits(gb.get(xb.as_tensor()).unwrap())
    );
}

#[test]
fn residual_dropout_matches_composition_and_the_unfused_ops_bit_for_bit() {
    let r = tensor(&[4, 3, 517], 46, 2.0);
    let x = tensor(&[4, 3, 517], 47, 3.0);
    let mask = dropout_mask(&[4, 3, 517], 48);
    let m64 = mask.to_dtype(DType::F64).unwrap();
    check(
        "residual_masked_scale",
        &[r.clone(), x.clone()],
        |t| kernels::residual_masked_scale(&t[0], &t[1], &mask, 1.0 / 0.9).unwrap(),
        |t| kernels::residual_masked_scale_composed(&t[0], &t[1], &m64, 1.0 / 0.9).unwrap(),
        1e-6,
    );
    let unfused = (&r + kernels::masked_scale(&x, &mask, 1.0 / 0.9).unwrap()).unwrap();
    let fused = kernels::residual_masked_scale(&r, &x, &mask, 1.0 / 0.9).unwrap();
    assert_eq!(bits(&fused), bits(&unfused));
}

#[test]
fn frozen_linear_matches_composition_and_gives_no_weight_gradient() {
    let x = tensor(&[3, 7, 37], 51, 2.0);
    let w = tensor(&[29, 37], 52, 0.5);
    let b = tensor(&[29], 53, 0.5);
    let (w64, b64) = (
        w.to_dtype(DType::F64).unwrap(),
        b.to_dtype(DType::F64).unwrap(),
    );
    check(
        "frozen_linear",
        std::slice::from_ref(&x),
        |t| kernels::frozen_linear(&t[0], &w, Some(&b)).unwrap(),
        |t| kernels::frozen_linear_composed(&t[0], &w64, Some(&b64)).unwrap(),
        2e-6,
    );
    check(
        "frozen_linear without bias",
        std::slice::from_ref(&x),
        |t| kernels::frozen_linear(&t[0], &w, None).unwrap(),
        |t| kernels::frozen_linear_composed(&t[0], &w64, None).unwrap(),
        2e-6,
    );
    // Weights given as variables are still constants here.
    let wv = Var::from_tensor(&w).unwrap();
    let xv = Var::from_tensor(&x).unwrap();
    let grads = kernels::frozen_linear(xv.as_tensor(), wv.as_tensor(), Some(&b))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(xv.as_tensor()).is_some());
    assert!(grads.get(wv.as_tensor()).is_none());
}

#[test]
fn linear_as_one_product_matches_candle_nn_linear() {
    let x = tensor(&[3, 7, 37], 61, 2.0);
    let w = tensor(&[29, 37], 62, 0.5);
    let b = tensor(&[29], 63, 0.5);
    check(
        "linear",
        &[x, w, b],
        |t| kernels::linear(&t[0], &t[1], Some(&t[2])).unwrap(),
        |t| {
            let layer = candle_nn::Linear::new(t[1].clone(), Some(t[2].clone()));
            candle_core::Module::forward(&layer, &t[0]).unwrap()
        },
        2e-6,
    );
    // A weight that is not trained gets no gradient product at all.
    let x = Var::from_tensor(&tensor(&[4, 37], 64, 1.0)).unwrap();
    let w = tensor(&[29, 37], 62, 0.5);
    let grads = kernels::linear(x.as_tensor(), &w, None)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(x.as_tensor()).is_some());
    assert!(grads.get(&w).is_none());
}

/// A causal mask over the last `q` of `k` positions, with padding: row 1's first two keys are
/// masked, and its second query row sees no key at all.
fn attention_mask(b: usize, q: usize, k: usize) -> Tensor {
    let mut mask = vec![0f32; b * q * k];
    for (i, m) in mask.iter_mut().enumerate() {
        let (batch, query, key) = (i / (q * k), (i / k) % q, i % k);
        if key > query + (k - q) || (batch == 1 && (key < 2 || query == 1)) {
            *m = -1e30;
        }
    }
    Tensor::from_vec(mask, (b, 1, q, k), &Device::Cpu).unwrap()
}

#[test]
fn attention_matches_composition_with_grouped_heads_and_padding() {
    // (batch, heads, kv heads, q_len, k_len, head_dim): grouped-query with more query rows than
    // one forward block (64), multi-head, and a query window shorter than the keys (a cache);
    // each without and with a dropout mask on the probabilities (0 or 1 / (1 − 0.25)).
    let cases = [(2, 6, 2, 70, 70, 8), (2, 4, 4, 5, 5, 4), (2, 2, 1, 3, 7, 4)];
    for (case, &(b, h, kv, t, s, d)) in cases.iter().enumerate() {
        let q = tensor(&[b, h, t, d], 20 + case as u64, 1.5);
        let k = tensor(&[b, kv, s, d], 30 + case as u64, 1.5);
        let v = tensor(&[b, kv, s, d], 40 + case as u64, 1.0);
        let mask = attention_mask(b, t, s);
        let dropped: Vec<f32> = values(b * h * t * s, 50 + case as u64, 1.0)
            .iter()
            .map(|&u| if u < -0.5 { 0.0 } else { 1.0 / 0.75 })
            .collect();
        let dropout = Tensor::from_vec(dropped, (b, h, t, s), &Device::Cpu).unwrap();
        for keep in [None, Some(&dropout)] {
            check(
                &format!(
                    "attention {:?}, dropout {}",
                    (b, h, kv, t, s, d),
                    keep.is_some()
                ),
                &[q.clone(), k.clone(), v.clone()],
                |x| kernels::attention(&x[0], &x[1], &x[2], &mask, 0.35, keep).unwrap(),
                |x| {
                    let m = mask.to_dtype(x[0].dtype()).unwrap();
                    let keep = keep.map(|k| k.to_dtype(x[0].dtype()).unwrap());
                    kernels::attention_composed(&x[0], &x[1], &x[2], &m, 0.35, keep.as_ref())
                        .unwrap()
                },
                2e-5,
            );
        }
    }
}

#[test]
fn packed_attention_matches_composition_with_padding_and_dropout() {
    // (batch, heads, len, head_dim): more rows than one forward block (64), and a small case.
    for (case, &(b, h, t, d)) in [(2, 3, 70, 8), (2, 4, 5, 4)].iter().enumerate() {
        let qkv = tensor(&[b, t, 3 * h * d], 60 + case as u64, 1.5);
        let mask = attention_mask(b, t, t);
        let dropped: Vec<f32> = values(b * h * t * t, 70 + case as u64, 1.0)
            .iter()
            .map(|&u| if u < -0.5 { 0.0 } else { 1.0 / 0.75 })
            .collect();
        let dropout = Tensor::from_vec(dropped, (b, h, t, t), &Device::Cpu).unwrap();
        for keep in [None, Some(&dropout)] {
            check(
                &format!(
                    "packed attention {:?}, dropout {}",
                    (b, h, t, d),
                    keep.is_some()
                ),
                std::slice::from_ref(&qkv),
                |x| kernels::packed_attention(&x[0], h, &mask, 0.35, keep).unwrap(),
                |x| {
                    // The composition reads q, k and v as three separate [b, h, t, d] tensors.
                    let split = |i: usize| {
                        x[0].narrow(2, i * h * d, h * d)
                            .unwrap()
                            .reshape((b, t, h, d))
                            .unwrap()
                            .transpose(1, 2)
                            .unwrap()
                            .contiguous()
                            .unwrap()
                    };
                    let m = mask.to_dtype(x[0].dtype()).unwrap();
                    let keep = keep.map(|k| k.to_dtype(x[0].dtype()).unwrap());
                    let (q, k, v) = (split(0), split(1), split(2));
                    kernels::attention_composed(&q, &k, &v, &m, 0.35, keep.as_ref()).unwrap()
                },
                2e-5,
            );
        }
    }
    let qkv = tensor(&[1, 4, 3 * 2 * 4 + 1], 80, 1.0);
    let err = kernels::packed_attention(&qkv, 2, &attention_mask(1, 4, 4), 1.0, None).unwrap_err();
    assert!(err.to_string().contains("heads"), "{err}");
}

#[test]
fn attention_rejects_mismatched_heads_and_masks() {
    let q = tensor(&[1, 3, 4, 8], 1, 1.0);
    let k = tensor(&[1, 2, 4, 8], 2, 1.0);
    let err = kernels::attention(&q, &k, &k, &attention_mask(1, 4, 4), 1.0, None).unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");
    let k = tensor(&[1, 1, 4, 8], 2, 1.0);
    let err = kernels::attention(&q, &k, &k, &attention_mask(1, 4, 5), 1.0, None).unwrap_err();
    assert!(err.to_string().contains("mask"), "{err}");
    let keep = tensor(&[1, 2, 4, 4], 3, 1.0);
    let err =
        kernels::attention(&q, &k, &k, &attention_mask(1, 4, 4), 1.0, Some(&keep)).unwrap_err();
    assert!(err.to_string().contains("dropout mask"), "{err}");
}
