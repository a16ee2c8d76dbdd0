//! A decoder's q/k/v projection into rotated heads as one op, against the linear layer, head split
//! and rotary op it replaces.

use candle_core::{DType, Tensor, Var};
use ganpo::kernels;

use super::{check, max_rel_diff, tensor};

/// Rotary tables of `seq` positions and `half` frequencies, as a real model's.
fn tables(seq: usize, half: usize, dtype: DType) -> (Tensor, Tensor) {
    let angle =
        |p: usize, i: usize| p as f64 * 10_000f64.powf(-((2 * i) as f64) / (2 * half) as f64);
    let table = |f: fn(f64) -> f64| {
        let v: Vec<f64> = (0..seq)
            .flat_map(|p| (0..half).map(move |i| f(angle(p, i))))
            .collect();
        Tensor::from_vec(v, (seq, half), &candle_core::Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    };
    (table(f64::cos), table(f64::sin))
}

/// With and without bias, with and without rotation: outputs and the input, weight and bias
/// gradients against the composition in f64.
#[test]
fn project_heads_matches_composition() {
    let (b, t, d, heads, hd) = (2, 7, 24, 3, 8);
    let (c32, s32) = tables(t, hd / 2, DType::F32);
    let (c64, s64) = tables(t, hd / 2, DType::F64);
    for (bias, rope) in [(false, true), (true, true), (false, false), (true, false)] {
        let mut inputs = vec![
            tensor(&[b, t, d], 81, 2.0),
            tensor(&[heads * hd, d], 82, 0.5),
        ];
        if bias {
            inputs.push(tensor(&[heads * hd], 83, 1.0));
        }
        check(
            &format!("project heads, bias {bias}, rope {rope}"),
            &inputs,
            |v| {
                let r = rope.then_some((&c32, &s32));
                kernels::project_heads(&v[0], &v[1], v.get(2), heads, r).unwrap()
            },
            |v| {
                let r = rope.then_some((&c64, &s64));
                kernels::project_heads_composed(&v[0], &v[1], v.get(2), heads, r).unwrap()
            },
            5e-6,
        );
    }
}

/// The fused forward is the composition's bit for bit in f32 (same product, same rotation).
#[test]
fn project_heads_forward_equals_the_unfused_ops_bit_for_bit() {
    let (t, hd) = (5, 8);
    let (c, s) = tables(t, hd / 2, DType::F32);
    let x = tensor(&[2, t, 16], 91, 1.0);
    let w = tensor(&[4 * hd, 16], 92, 0.5);
    let bias = tensor(&[4 * hd], 93, 1.0);
    let fused = kernels::project_heads(&x, &w, Some(&bias), 4, Some((&c, &s))).unwrap();
    let composed = kernels::project_heads_composed(&x, &w, Some(&bias), 4, Some((&c, &s))).unwrap();
    let (f, g): (Vec<f32>, Vec<f32>) = (
        fused.flatten_all().unwrap().to_vec1().unwrap(),
        composed.flatten_all().unwrap().to_vec1().unwrap(),
    );
    assert!(f.iter().zip(&g).all(|(a, b)| a.to_bits() == b.to_bits()));
}

/// A frozen weight gets no gradient; the input gradient is unchanged.
#[test]
fn project_heads_with_a_constant_weight() {
    let (c, s) = tables(3, 2, DType::F32);
    let x = Var::from_tensor(&tensor(&[1, 3, 6], 101, 1.0)).unwrap();
    let w = tensor(&[8, 6], 102, 1.0);
    let probe = tensor(&[1, 2, 3, 4], 103, 1.0);
    let grads = |y: Tensor| (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
    let fused = grads(kernels::project_heads(x.as_tensor(), &w, None, 2, Some((&c, &s))).unwrap());
    let composed =
        grads(kernels::project_heads_composed(x.as_tensor(), &w, None, 2, Some((&c, &s))).unwrap());
    assert!(fused.get(&w).is_none(), "no gradient for a constant");
    let err = max_rel_diff(fused.get(&x).unwrap(), composed.get(&x).unwrap());
    assert!(err < 1e-5, "input gradient differs by {err:e}");
}

/// Tables that do not fit the sequence are an error naming the op.
#[test]
fn project_heads_rejects_mismatched_tables() {
    let (c, s) = tables(4, 2, DType::F32);
    let err = kernels::project_heads(
        &tensor(&[1, 3, 6], 111, 1.0),
        &tensor(&[8, 6], 112, 1.0),
        None,
        2,
        Some((&c, &s)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("head projection"), "{err}");
}
