//! The shared numerics in f32, element by element, against f64 formulas built on Rust's `ln_1p` and
//! `exp_m1`: values and derivatives must keep their **relative** accuracy everywhere, including the
//! tails (log σ(30) ≈ −9e−14 must not round to 0) and the kinks (derivative ½ at 0).

use candle_core::{DType, Tensor, Var};
use ganpo::losses::numerics::{log_sigmoid, log1mexp, relu, sigmoid, softplus};

use super::{values, vector};

/// Relative error allowed per element: a few f32 ulps (f32 ε = 1.2e−7). Points stay where results are
/// normal f32 numbers (|result| > 1.2e−38); subnormals carry fewer digits by construction.
const TOL: f64 = 1e-6;

fn log_sigmoid_ref(x: f64) -> f64 {
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

fn sigmoid_ref(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        x.exp() / (1.0 + x.exp())
    }
}

fn log1mexp_ref(x: f64) -> f64 {
    if x > -std::f64::consts::LN_2 {
        (-x.exp_m1()).ln()
    } else {
        (-x.exp()).ln_1p()
    }
}

type Function = fn(&Tensor) -> ganpo::Result<Tensor>;

/// Checks value and derivative of `f` at every point against the f64 references.
fn check(
    name: &str,
    f: Function,
    points: &[f64],
    value: fn(f64) -> f64,
    derivative: fn(f64) -> f64,
) {
    let x = Var::from_tensor(&vector(points, DType::F32)).unwrap();
    let y = f(x.as_tensor()).unwrap();
    let grad = y.sum_all().unwrap().backward().unwrap();
    let grad = values(grad.get(x.as_tensor()).unwrap());
    for ((&p, got), g) in points.iter().zip(values(&y)).zip(grad) {
        let p = p as f32 as f64;
        let (want, dwant) = (value(p), derivative(p));
        let err = (got - want).abs() / want.abs().max(f64::MIN_POSITIVE);
        assert!(
            err <= TOL,
            "{name}({p}) = {got}, expected {want} (rel err {err:.1e})"
        );
        let derr = (g - dwant).abs() / dwant.abs().max(1e-30);
        assert!(
            derr <= TOL,
            "{name}'({p}) = {g}, expected {dwant} (rel err {derr:.1e})"
        );
    }
}

const POINTS: [f64; 15] = [
    -80.0, -30.0, -10.0, -1.0, -0.5, -1e-3, -1e-9, 0.0, 1e-9, 1e-3, 0.5, 1.0, 10.0, 30.0, 80.0,
];

#[test]
fn log_sigmoid_softplus_and_sigmoid_are_accurate_in_value_and_derivative() {
    check("log_sigmoid", log_sigmoid, &POINTS, log_sigmoid_ref, |x| {
        sigmoid_ref(-x)
    });
    check(
        "softplus",
        softplus,
        &POINTS,
        |x| -log_sigmoid_ref(-x),
        sigmoid_ref,
    );
    check("sigmoid", sigmoid, &POINTS, sigmoid_ref, |x| {
        sigmoid_ref(x) * sigmoid_ref(-x)
    });
}

#[test]
fn log1mexp_is_accurate_near_zero_and_far_from_it() {
    let points = [
        -1e-30, -1e-7, -1e-6, -1e-3, -0.5, -0.69, -0.70, -1.0, -5.0, -30.0, -80.0,
    ];
    check("log1mexp", log1mexp, &points, log1mexp_ref, |x| {
        x.exp() / x.exp_m1()
    });
}

#[test]
fn relu_has_pytorchs_zero_subgradient_at_the_kink() {
    check(
        "relu",
        relu,
        &[-2.0, 0.0, 3.0],
        |x| x.max(0.0),
        |x| {
            if x > 0.0 { 1.0 } else { 0.0 }
        },
    );
}
