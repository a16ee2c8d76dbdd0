//! Invariants of the discriminator and of one discriminator step that need no reference numbers:
//! what gradients reach, what state each mode changes, determinism and resumability, input errors.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer;
use ganpo::Error;
use ganpo::ganpo::objective::{discriminator_step, generator_losses};
use ganpo::ganpo::rng::SplitMix64;
use ganpo::ganpo::{Discriminator, DiscriminatorConfig, Latents, Mode, RunningMeans};

pub(crate) const D: usize = 8;
pub(crate) const B: usize = 3;
/// Equal to `max_positions`, so every row of the positional embedding is used.
pub(crate) const T: usize = 6;

pub(crate) fn config(dropout: f64) -> DiscriminatorConfig {
    DiscriminatorConfig {
        width: 16,
        depth: 2,
        heads: 4,
        dropout,
        max_positions: T,
    }
}

pub(crate) fn randn(seed: u64, shape: &[usize]) -> Tensor {
    let mut rng = SplitMix64::new(seed);
    let n = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
    Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

fn disc(seed: u64, dropout: f64) -> Discriminator {
    Discriminator::new(&config(dropout), D, seed, DType::F32, &Device::Cpu).unwrap()
}

pub(crate) fn padding_mask() -> Tensor {
    let rows = [[1u8, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0]];
    Tensor::new(&rows, &Device::Cpu).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    v.into_iter().map(f32::to_bits).collect()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn discriminator_step_never_reaches_the_policy_and_trains_every_parameter() {
    let policy = Var::from_tensor(&randn(1, &[D, D])).unwrap();
    let policy_before = bits(policy.as_tensor());
    let (xc, xr) = (randn(2, &[B, T, D]), randn(3, &[B, T, D]));
    let pc = xc.broadcast_matmul(policy.as_tensor()).unwrap();
    let pr = xr.broadcast_matmul(policy.as_tensor()).unwrap();
    let (rc, rr) = (randn(4, &[B, T, D]), randn(5, &[B, T, D]));
    let (mask, ones) = (padding_mask(), padding_mask().ones_like().unwrap());
    let (mut plus, mut minus) = (disc(10, 0.1), disc(11, 0.1));
    let mut means = RunningMeans::new(0.9).unwrap();
    let latents = Latents {
        policy_chosen: &pc,
        policy_rejected: &pr,
        ref_chosen: &rc,
        ref_rejected: &rr,
        chosen_mask: &mask,
        rejected_mask: &ones,
    };
    let step = discriminator_step(&mut plus, &mut minus, &latents, &mut means).unwrap();

    // L_D⁺ reaches D⁺ only, L_D⁻ reaches D⁻ only, and neither reaches the policy.
    let mut grads_plus = step.losses.plus.mean(0).unwrap().backward().unwrap();
    plus.take_grads(&mut grads_plus).unwrap();
    minus.take_grads(&mut grads_plus).unwrap();
    assert!(grads_plus.get(&policy).is_none());
    for (_, var) in minus.named_vars() {
        assert!(grads_plus.get(&var).is_none(), "L_D+ reached D-");
    }
    let loss = (step.losses.plus.mean(0).unwrap() + step.losses.minus.mean(0).unwrap()).unwrap();
    let mut grads = loss.backward().unwrap();
    plus.take_grads(&mut grads).unwrap();
    minus.take_grads(&mut grads).unwrap();
    assert!(
        grads.get(&policy).is_none(),
        "a discriminator loss reached the policy"
    );
    let mut disc_vars = Vec::new();
    for (which, d) in [("D+", &plus), ("D-", &minus)] {
        for (name, var) in d.named_vars() {
            let grad = grads
                .get(&var)
                .unwrap_or_else(|| panic!("{which} {name}: no gradient"));
            assert!(max_abs(grad) > 0.0, "{which} {name}: zero gradient");
            disc_vars.push((name, var));
        }
    }

    // The discriminators' own optimizer step changes them and leaves the policy bit-identical.
    let before: Vec<_> = disc_vars.iter().map(|(_, v)| bits(v.as_tensor())).collect();
    let vars = disc_vars.iter().map(|(_, v)| v.clone()).collect();
    candle_nn::SGD::new(vars, 0.1)
        .unwrap()
        .step(&grads)
        .unwrap();
    assert_eq!(bits(policy.as_tensor()), policy_before);
    for ((name, var), old) in disc_vars.iter().zip(before) {
        assert_ne!(bits(var.as_tensor()), old, "{name} did not move");
    }

    // The generator term reaches the policy and, through frozen discriminators, nothing else.
    let g = generator_losses(&mut plus, &mut minus, &pc, &pr, &mask, &ones, &means).unwrap();
    let grads = g.mean(0).unwrap().backward().unwrap();
    assert!(max_abs(grads.get(&policy).expect("L_G reaches the policy")) > 0.0);
    for (name, var) in &disc_vars {
        assert!(
            grads.get(var).is_none(),
            "L_G reached discriminator parameter {name}"
        );
    }
}

#[test]
fn eval_forward_is_deterministic_and_changes_no_state() {
    let (x, mask) = (randn(20, &[B, T, D]), padding_mask());
    let mut d = disc(21, 0.1);
    let (state, rng) = (d.spectral_state(), d.dropout_rng());
    let e1 = d.forward(&x, &mask, Mode::Eval).unwrap();
    let e2 = d.forward(&x, &mask, Mode::Eval).unwrap();
    let frozen = d.forward(&x, &mask, Mode::Frozen).unwrap();
    assert_eq!(bits(&e1), bits(&e2));
    assert_eq!(bits(&e1), bits(&frozen));
    assert_eq!(d.dropout_rng(), rng);
    for (key, value) in d.spectral_state() {
        assert_eq!(
            bits(&value),
            bits(&state[&key]),
            "{key} changed in eval mode"
        );
    }

    // Training mode: dropout is active and every u/v moves (but head.2's u, a unit vector in ℝ¹).
    let t1 = d.forward(&x, &mask, Mode::Train).unwrap();
    assert_ne!(bits(&t1), bits(&e1));
    assert!(d.dropout_rng().draws > rng.draws);
    for (key, value) in d.spectral_state() {
        if value.elem_count() == 1 {
            assert_eq!(bits(&value.abs().unwrap()), [1f32.to_bits()], "{key}");
            continue;
        }
        assert_ne!(
            bits(&value),
            bits(&state[&key]),
            "{key} did not advance in training mode"
        );
    }
}

#[test]
fn training_forward_is_seeded_and_resumes_bit_exactly() {
    let (x, mask) = (randn(30, &[B, T, D]), padding_mask());
    let (mut a, mut b) = (disc(31, 0.1), disc(31, 0.1));
    let ta = a.forward(&x, &mask, Mode::Train).unwrap();
    let tb = b.forward(&x, &mask, Mode::Train).unwrap();
    assert_eq!(
        bits(&ta),
        bits(&tb),
        "same seed, same dropout masks and u/v"
    );
    assert_ne!(
        bits(&ta),
        bits(&disc(32, 0.1).forward(&x, &mask, Mode::Train).unwrap())
    );

    // Checkpoint a (parameters, u/v, dropout state) into a fresh discriminator; both continue alike.
    let mut resumed = disc(99, 0.1);
    resumed.set_tensors(&a.tensors()).unwrap();
    resumed.set_dropout_rng(a.dropout_rng());
    let next_a = a.forward(&x, &mask, Mode::Train).unwrap();
    let next_resumed = resumed.forward(&x, &mask, Mode::Train).unwrap();
    assert_eq!(bits(&next_a), bits(&next_resumed));
}

#[test]
fn padded_positions_are_ignored_only_under_a_mask() {
    let (x, mask) = (randn(40, &[B, T, D]), padding_mask());
    // Change every latent at a masked position of row 1 (positions 4, 5).
    let noise = randn(41, &[1, 2, D]);
    let row = x.narrow(0, 1, 1).unwrap();
    let row = Tensor::cat(&[&row.narrow(1, 0, 4).unwrap(), &noise], 1).unwrap();
    let parts = [
        &x.narrow(0, 0, 1).unwrap(),
        &row,
        &x.narrow(0, 2, 1).unwrap(),
    ];
    let x2 = Tensor::cat(&parts, 0).unwrap();
    let mut d = disc(42, 0.0);
    let a = d
        .forward(&x, &mask, Mode::Eval)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let b = d
        .forward(&x2, &mask, Mode::Eval)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(
        (a[1] - b[1]).abs() <= 1e-6 * a[1].abs().max(1.0),
        "{a:?} vs {b:?}"
    );
    assert_eq!((a[0], a[2]), (b[0], b[2]));
    // The authors' unmasked discriminator sees the padding.
    let ones = mask.ones_like().unwrap();
    let a = d
        .forward(&x, &ones, Mode::Eval)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let b = d
        .forward(&x2, &ones, Mode::Eval)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!((a[1] - b[1]).abs() > 1e-4, "{a:?} vs {b:?}");
}

#[test]
fn bad_inputs_are_typed_errors() {
    let mut d = disc(50, 0.1);
    let mask = padding_mask();
    let too_long = randn(51, &[B, T + 1, D]);
    let long_mask = Tensor::ones((B, T + 1), DType::U8, &Device::Cpu).unwrap();
    match d.forward(&too_long, &long_mask, Mode::Eval) {
        Err(Error::Config(msg)) => assert!(msg.contains("max_positions"), "{msg}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    let x = randn(52, &[B, T, D]);
    let zero_row = Tensor::new(&[[1u8; T], [0; T], [1; T]], &Device::Cpu).unwrap();
    let two = Tensor::new(&[[1u8; T], [2; T], [1; T]], &Device::Cpu).unwrap();
    let short = Tensor::ones((B, T - 1), DType::U8, &Device::Cpu).unwrap();
    for bad in [&zero_row, &two, &short] {
        let err = d.forward(&x, bad, Mode::Train).unwrap_err();
        assert!(matches!(err, Error::Data { .. }), "{err}");
    }
    let wrong_width = randn(53, &[B, T, D + 1]);
    assert!(matches!(
        d.forward(&wrong_width, &mask, Mode::Eval),
        Err(Error::Data { .. })
    ));
    let rank2 = randn(54, &[B, D]);
    assert!(matches!(
        d.forward(&rank2, &mask, Mode::Eval),
        Err(Error::Data { .. })
    ));
    // A rejected call must not have advanced any state.
    assert_eq!(d.dropout_rng().draws, 0);
}
