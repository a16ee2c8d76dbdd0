//! `Discriminator::forward_each` (the inputs of several calls stacked into one forward) gives what
//! successive `forward` calls give: the same scores and gradients up to rounding, the same
//! power-iteration state and dropout stream afterwards, bit for bit.

use candle_core::{DType, Device, Tensor, Var};
use ganpo::ganpo::rng::SplitMix64;
use ganpo::ganpo::{Discriminator, DiscriminatorConfig, Mode};

const D: usize = 8;
const T: usize = 6;

fn disc() -> Discriminator {
    let config = DiscriminatorConfig {
        width: 16,
        depth: 2,
        heads: 4,
        dropout: 0.25,
        max_positions: 8,
    };
    Discriminator::new(&config, D, 5, DType::F32, &Device::Cpu).unwrap()
}

fn randn(seed: u64, shape: &[usize]) -> Var {
    let mut rng = SplitMix64::new(seed);
    let n = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
    Var::from_tensor(&Tensor::from_vec(data, shape, &Device::Cpu).unwrap()).unwrap()
}

fn mask(rows: &[[u8; T]]) -> Tensor {
    let flat: Vec<u8> = rows.iter().flatten().copied().collect();
    Tensor::from_vec(flat, (rows.len(), T), &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn assert_close(a: &Tensor, b: &Tensor, what: &str) {
    for (x, y) in values(a).into_iter().zip(values(b)) {
        assert!(
            (x - y).abs() <= 1e-5 * (1.0 + x.abs()),
            "{what}: {x} vs {y}"
        );
    }
}

/// Every u/v and the dropout stream, bit for bit.
fn state(d: &Discriminator) -> Vec<(String, Vec<u32>)> {
    let mut s: Vec<_> = d
        .spectral_state()
        .into_iter()
        .map(|(k, v)| (k, values(&v).into_iter().map(f32::to_bits).collect()))
        .collect();
    s.sort();
    let rng = d.dropout_rng();
    s.push(("dropout".into(), vec![rng.draws as u32, rng.seed as u32]));
    s
}

#[test]
fn stacked_training_forward_equals_successive_forwards() {
    let xs = [
        randn(1, &[3, T, D]),
        randn(2, &[2, T, D]),
        randn(3, &[3, T, D]),
    ];
    let masks = [
        mask(&[[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 1, 1, 1, 1, 0]]),
        mask(&[[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]]),
        mask(&[[1, 1, 1, 1, 1, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]]),
    ];
    let (mut one, mut stacked) = (disc(), disc());
    let successive: Vec<Tensor> = (0..3)
        .map(|i| {
            one.forward(xs[i].as_tensor(), &masks[i], Mode::Train)
                .unwrap()
        })
        .collect();
    let inputs: Vec<(&Tensor, &Tensor)> = (0..3).map(|i| (xs[i].as_tensor(), &masks[i])).collect();
    let together = stacked.forward_each(&inputs, Mode::Train).unwrap();
    assert_eq!(together.len(), 3);
    for (a, b) in successive.iter().zip(&together) {
        assert_eq!(a.dims(), b.dims());
        assert_close(a, b, "scores");
    }
    assert_eq!(state(&one), state(&stacked), "u/v and dropout stream");

    // Gradients into every parameter and every input agree.
    let loss = |scores: &[Tensor]| {
        let weighted: Vec<Tensor> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| (s * (i as f64 + 1.0)).unwrap().sum_all().unwrap())
            .collect();
        Tensor::stack(&weighted, 0).unwrap().sum_all().unwrap()
    };
    let (mut ga, mut gb) = (
        loss(&successive).backward().unwrap(),
        loss(&together).backward().unwrap(),
    );
    one.take_grads(&mut ga).unwrap();
    stacked.take_grads(&mut gb).unwrap();
    for ((name, va), (_, vb)) in one.named_vars().iter().zip(stacked.named_vars()) {
        let (a, b) = (ga.get(va.as_tensor()), gb.get(vb.as_tensor()));
        assert_close(a.unwrap(), b.unwrap(), name);
    }
    for x in &xs {
        // Both graphs read the same input Vars.
        let (a, b) = (
            ga.get(x.as_tensor()).unwrap(),
            gb.get(x.as_tensor()).unwrap(),
        );
        assert_close(a, b, "input gradient");
    }

    // Both continue alike: the next single forward draws the same masks from the same u/v.
    let a = one
        .forward(xs[0].as_tensor(), &masks[0], Mode::Train)
        .unwrap();
    let b = stacked
        .forward(xs[0].as_tensor(), &masks[0], Mode::Train)
        .unwrap();
    assert_close(&a, &b, "next forward");
}

#[test]
fn inputs_of_different_lengths_are_scored_one_after_the_other() {
    let (short, long) = (randn(4, &[2, 4, D]), randn(5, &[1, T, D]));
    let short_mask = Tensor::ones((2, 4), DType::U8, &Device::Cpu).unwrap();
    let long_mask = mask(&[[1, 1, 1, 1, 0, 0]]);
    let (mut one, mut stacked) = (disc(), disc());
    let a = [
        one.forward(short.as_tensor(), &short_mask, Mode::Train)
            .unwrap(),
        one.forward(long.as_tensor(), &long_mask, Mode::Train)
            .unwrap(),
    ];
    let b = stacked
        .forward_each(
            &[
                (short.as_tensor(), &short_mask),
                (long.as_tensor(), &long_mask),
            ],
            Mode::Train,
        )
        .unwrap();
    for (a, b) in a.iter().zip(&b) {
        assert_close(a, b, "scores");
    }
    assert_eq!(state(&one), state(&stacked));
}

#[test]
fn a_bad_input_anywhere_leaves_the_state_untouched() {
    let x = randn(6, &[2, T, D]);
    let good = Tensor::ones((2, T), DType::U8, &Device::Cpu).unwrap();
    let empty_row = mask(&[[1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]]);
    let mut d = disc();
    let before = state(&d);
    let err = d
        .forward_each(
            &[(x.as_tensor(), &good), (x.as_tensor(), &empty_row)],
            Mode::Train,
        )
        .unwrap_err();
    assert!(err.to_string().contains("row 1"), "{err}");
    assert_eq!(state(&d), before);
}
