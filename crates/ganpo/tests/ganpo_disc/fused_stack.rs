//! The fused encoder stack (f32 on the CPU: one op, hand-written backward, parameter gradients
//! through `Discriminator::take_grads`) against the composed candle path (f64: per-layer ops,
//! candle's autograd) on the same weights and dropout masks: scores, input gradients and every
//! parameter's gradient, in each mode; and the contract around the gradient sink.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use ganpo::ganpo::{Discriminator, Mode};

use crate::invariants::{B, D, T, config, padding_mask, randn};

fn max_abs(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// `|a − b|∞ ≤ tol · max(|b|∞, floor)`, with a message naming `what`.
fn assert_close(a: &Tensor, b: &Tensor, tol: f64, floor: f64, what: &str) {
    let a = a.to_dtype(DType::F64).unwrap();
    let b = b.to_dtype(DType::F64).unwrap();
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let diff = max_abs(&(&a - &b).unwrap());
    let scale = max_abs(&b).max(floor);
    assert!(
        diff <= tol * scale,
        "{what}: differs by {diff:.3e} (scale {scale:.3e})"
    );
}

/// A fused (f32) discriminator and a composed (f64) copy with the same tensors and dropout seed.
fn pair(dropout: f64) -> (Discriminator, Discriminator) {
    let fused = Discriminator::new(&config(dropout), D, 41, DType::F32, &Device::Cpu).unwrap();
    let mut composed =
        Discriminator::new(&config(dropout), D, 41, DType::F64, &Device::Cpu).unwrap();
    let tensors: HashMap<String, Tensor> = fused
        .tensors()
        .into_iter()
        .map(|(name, t)| (name, t.to_dtype(DType::F64).unwrap()))
        .collect();
    composed.set_tensors(&tensors).unwrap();
    (fused, composed)
}

/// Runs both paths in `mode` on the same input and loss (a weighted sum of the scores) and
/// compares scores, the input gradient and, unless frozen, every parameter's gradient.
fn check(mode: Mode, dropout: f64) {
    let (mut fused, mut composed) = pair(dropout);
    let (x, mask) = (randn(40, &[B, T, D]), padding_mask());
    let weights = Tensor::new(&[1.0f64, -2.0, 0.5], &Device::Cpu).unwrap();
    let x32 = Var::from_tensor(&x).unwrap();
    let x64 = Var::from_tensor(&x.to_dtype(DType::F64).unwrap()).unwrap();
    let a = fused.forward(x32.as_tensor(), &mask, mode).unwrap();
    let b = composed.forward(x64.as_tensor(), &mask, mode).unwrap();
    let what = format!("{mode:?}, dropout {dropout}");
    assert_close(&a, &b, 1e-4, 1.0, &format!("{what}: scores"));
    let loss = |s: &Tensor| {
        (s.to_dtype(DType::F64).unwrap() * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let mut ga = loss(&a).backward().unwrap();
    let mut gb = loss(&b).backward().unwrap();
    fused.take_grads(&mut ga).unwrap();
    composed.take_grads(&mut gb).unwrap();
    let (dxa, dxb) = (
        ga.get(x32.as_tensor()).unwrap(),
        gb.get(x64.as_tensor()).unwrap(),
    );
    assert!(max_abs(dxa) > 0.0, "{what}: no input gradient");
    assert_close(dxa, dxb, 1e-4, 0.0, &format!("{what}: input gradient"));
    let vars = fused.named_vars().into_iter().zip(composed.named_vars());
    for ((name, va), (_, vb)) in vars {
        match mode {
            Mode::Frozen => assert!(ga.get(va.as_tensor()).is_none(), "{what}: {name} trained"),
            Mode::Train | Mode::Eval => {
                let (Some(a), Some(b)) = (ga.get(va.as_tensor()), gb.get(vb.as_tensor())) else {
                    panic!("{what}: {name} has no gradient")
                };
                assert_close(a, b, 1e-4, 1e-6, &format!("{what}: {name}"));
            }
        }
    }
}

#[test]
fn training_forward_with_dropout_matches_the_composed_f64_path() {
    check(Mode::Train, 0.3);
}

#[test]
fn training_forward_without_dropout_matches_the_composed_f64_path() {
    // No dropout in the last layer: its output projection moves past the pool.
    check(Mode::Train, 0.0);
}

#[test]
fn eval_forward_matches_the_composed_f64_path() {
    check(Mode::Eval, 0.3);
}

#[test]
fn frozen_forward_gives_input_gradients_only() {
    check(Mode::Frozen, 0.3);
}

#[test]
fn uncollected_gradients_stop_the_next_forward_and_collected_ones_sum() {
    let (mut d, _) = pair(0.1);
    let (x, mask) = (randn(7, &[B, T, D]), padding_mask());
    let once = |d: &mut Discriminator| {
        d.forward(&x, &mask, Mode::Train)
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let name = "transformer.layers.0.linear1.weight";
    let var = |d: &Discriminator| {
        d.named_vars()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
    };

    // One loss through two forwards: the stack's gradients from both calls add up.
    let (first, second) = (once(&mut d), once(&mut d));
    let mut both = (&first + &second).unwrap().backward().unwrap();
    d.take_grads(&mut both).unwrap();
    let mut only_first = first.backward().unwrap();
    d.take_grads(&mut only_first).unwrap();
    let mut only_second = second.backward().unwrap();
    d.take_grads(&mut only_second).unwrap();
    let v = var(&d);
    let sum =
        (only_first.get(v.as_tensor()).unwrap() + only_second.get(v.as_tensor()).unwrap()).unwrap();
    assert_close(both.get(v.as_tensor()).unwrap(), &sum, 1e-6, 0.0, name);

    // A backward pass whose gradients stay in the sink blocks the next training forward…
    let _ = once(&mut d).backward().unwrap();
    let err = d.forward(&x, &mask, Mode::Train).unwrap_err();
    assert!(err.to_string().contains("take_grads"), "{err}");
    // …but not a frozen one, and collecting them clears the way.
    d.forward(&x, &mask, Mode::Frozen).unwrap();
    d.take_grads(&mut only_first).unwrap();
    d.forward(&x, &mask, Mode::Train).unwrap();
}
