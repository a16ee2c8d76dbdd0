//! Properties every implementation must have, independent of any fixture: DPO at zero margin,
//! chosen/rejected symmetry, sum-vs-average conventions, mixes, f64 finite differences, stability at
//! extreme margins, batch-order independence of AOT and explicit BCO state.

use candle_core::{DType, Tensor};
use ganpo::losses::LossState;

use super::{Pairs, build, loss_from_toml, run, values};

pub fn pairs() -> Pairs {
    Pairs {
        policy_chosen: vec![-12.5, -3.25, -40.0, -7.0, -22.75],
        policy_rejected: vec![-30.0, -9.5, -35.5, -6.0, -48.25],
        ref_chosen: vec![-14.0, -2.5, -42.25, -9.5, -20.0],
        ref_rejected: vec![-28.5, -11.0, -30.0, -5.25, -50.5],
        chosen_counts: vec![10.0, 4.0, 31.0, 6.0, 17.0],
        rejected_counts: vec![25.0, 8.0, 22.0, 3.0, 40.0],
    }
}

pub fn toml_for(objective: &str) -> String {
    format!("objective = {{ {objective} }}")
}

#[test]
fn dpo_is_ln2_with_gradient_exactly_minus_half_beta_when_policy_equals_reference() {
    let mut p = pairs();
    p.ref_chosen = p.policy_chosen.clone();
    p.ref_rejected = p.policy_rejected.clone();
    for beta in [0.1, 0.5, 2.0] {
        let loss = loss_from_toml(&toml_for(&format!("type = \"sigmoid\", beta = {beta}")));
        let (out, gc, gr) = run(&loss, &build(&p, DType::F32), &[1.0; 5]);
        for l in values(&out.losses) {
            assert!((l - std::f64::consts::LN_2).abs() < 1e-7, "loss {l} ≠ ln 2");
        }
        // Trap 4: the subgradient of log σ at 0 must be ½, so ∂L/∂S_θ(y_w) = −β/2 to the bit.
        let half = beta as f32 / 2.0;
        assert!(
            gc.to_vec1::<f32>().unwrap().iter().all(|&g| g == -half),
            "{gc}"
        );
        assert!(
            gr.to_vec1::<f32>().unwrap().iter().all(|&g| g == half),
            "{gr}"
        );
        assert!(values(&out.chosen_rewards).iter().all(|&r| r == 0.0));
        assert!(values(&out.rejected_rewards).iter().all(|&r| r == 0.0));
    }
}

#[test]
fn swapping_chosen_and_rejected_negates_margins_and_swaps_rewards() {
    let objectives = [
        "type = \"sigmoid\", beta = 0.1, label_smoothing = 0.1",
        "type = \"robust\", beta = 0.1, label_smoothing = 0.2",
        "type = \"ipo\", beta = 0.1",
        "type = \"hinge\", beta = 0.1",
        "type = \"nca_pair\", beta = 0.1",
        "type = \"apo_zero\", beta = 0.1",
        "type = \"discopop\", beta = 0.1",
        "type = \"sigmoid_norm\", beta = 0.1",
        "type = \"simpo\"",
        "type = \"cpo\", cpo_alpha = 0.0",
        "type = \"orpo\"",
    ];
    let p = pairs();
    for objective in objectives {
        let loss = loss_from_toml(&toml_for(objective));
        let (out, ..) = run(&loss, &build(&p, DType::F32), &[1.0; 5]);
        let (swapped, ..) = run(&loss, &build(&p.swapped(), DType::F32), &[1.0; 5]);
        assert_eq!(
            values(&swapped.chosen_rewards),
            values(&out.rejected_rewards),
            "{objective}"
        );
        assert_eq!(
            values(&swapped.rejected_rewards),
            values(&out.chosen_rewards),
            "{objective}"
        );
        let margin = values(&(&out.chosen_rewards - &out.rejected_rewards).unwrap());
        let swapped_margin =
            values(&(&swapped.chosen_rewards - &swapped.rejected_rewards).unwrap());
        for (m, s) in margin.iter().zip(&swapped_margin) {
            assert_eq!(*s, -m, "{objective}");
        }
    }
    // DPO: −log σ(−z) = −log σ(z) + z, so the swapped loss exceeds the original by β·h.
    let loss = loss_from_toml(&toml_for("type = \"sigmoid\", beta = 0.1"));
    let (out, ..) = run(&loss, &build(&p, DType::F64), &[1.0; 5]);
    let (swapped, ..) = run(&loss, &build(&p.swapped(), DType::F64), &[1.0; 5]);
    let margin = values(&(&out.chosen_rewards - &out.rejected_rewards).unwrap());
    for ((l, s), z) in values(&out.losses)
        .iter()
        .zip(values(&swapped.losses))
        .zip(margin)
    {
        assert!((s - (l + z)).abs() < 1e-12, "swapped {s}, loss {l}, βh {z}");
    }
}

#[test]
fn averaging_losses_ignore_length_at_equal_average_and_summing_losses_do_not() {
    // Doubling a sequence's tokens at the same average log-prob doubles its sums and its count.
    // Multiplying by 2 is exact in floating point, so averaging losses must not move at all.
    let p = pairs();
    let mut doubled = p.clone();
    for v in [
        &mut doubled.policy_chosen,
        &mut doubled.ref_chosen,
        &mut doubled.chosen_counts,
    ] {
        v[1] *= 2.0;
    }
    for (objective, averages) in [
        ("type = \"ipo\", beta = 0.1", true),
        ("type = \"simpo\", beta = 2.0, gamma_beta_ratio = 0.5", true),
        ("type = \"sigmoid_norm\", beta = 0.1", true),
        ("type = \"sigmoid\", beta = 0.1", false),
        ("type = \"cpo\", cpo_alpha = 0.0", false),
    ] {
        let loss = loss_from_toml(&toml_for(objective));
        let (out, ..) = run(&loss, &build(&p, DType::F32), &[1.0; 5]);
        let (twice, ..) = run(&loss, &build(&doubled, DType::F32), &[1.0; 5]);
        let (a, b) = (values(&out.losses), values(&twice.losses));
        if averages {
            assert_eq!(a, b, "{objective} must use average log-probs");
        } else {
            assert_ne!(a[1], b[1], "{objective} must use summed log-probs");
            assert_eq!(a[0], b[0], "{objective}: other pairs must not move");
        }
    }
}

#[test]
fn a_mix_of_one_weight_one_component_is_that_component_and_mixes_add_up() {
    let p = pairs();
    let built = build(&p, DType::F32);
    for objective in [
        "type = \"sigmoid\", beta = 0.1, label_smoothing = 0.05",
        "type = \"ipo\", beta = 0.3",
        "type = \"simpo\"",
        "type = \"discopop\"",
    ] {
        let single = loss_from_toml(&toml_for(objective));
        let mix = loss_from_toml(&format!(
            "[[mix]]\nweight = 1.0\nobjective = {{ {objective} }}"
        ));
        let (a, ga, _) = run(&single, &built, &[1.0; 5]);
        let (b, gb, _) = run(&mix, &built, &[1.0; 5]);
        assert_eq!(values(&a.losses), values(&b.losses), "{objective}");
        assert_eq!(
            values(&a.chosen_rewards),
            values(&b.chosen_rewards),
            "{objective}"
        );
        assert_eq!(values(&ga), values(&gb), "{objective}");
    }
    let a = loss_from_toml(&toml_for("type = \"sigmoid\", beta = 0.1"));
    let b = loss_from_toml(&toml_for("type = \"nca_pair\", beta = 0.2"));
    let mix = loss_from_toml(
        "[[mix]]\nweight = 0.3\nobjective = { type = \"sigmoid\", beta = 0.1 }\n\
         [[mix]]\nweight = 1.7\nobjective = { type = \"nca_pair\", beta = 0.2 }",
    );
    let built = build(&p, DType::F64);
    let ((oa, ..), (ob, ..), (om, ..)) = (
        run(&a, &built, &[1.0; 5]),
        run(&b, &built, &[1.0; 5]),
        run(&mix, &built, &[1.0; 5]),
    );
    let combine = |x: &Tensor, y: &Tensor| {
        values(&(x.affine(0.3, 0.0).unwrap() + y.affine(1.7, 0.0).unwrap()).unwrap())
    };
    for (got, want) in [
        (values(&om.losses), combine(&oa.losses, &ob.losses)),
        (
            values(&om.chosen_rewards),
            combine(&oa.chosen_rewards, &ob.chosen_rewards),
        ),
        (
            values(&om.rejected_rewards),
            combine(&oa.rejected_rewards, &ob.rejected_rewards),
        ),
    ] {
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{got:?} vs {want:?}"
            );
        }
    }
}

/// Central differences in f64 of `Σ_i c_i·loss_i` against autodiff, for both policy inputs.
fn finite_difference_check(objective: &str, p: &Pairs) {
    let loss = loss_from_toml(objective);
    let c = [0.7, 1.3, 0.9, 1.1, 0.5];
    let (_, gc, gr) = run(&loss, &build(p, DType::F64), &c);
    let scalar = |q: &Pairs| -> f64 {
        let out = loss
            .compute(&build(q, DType::F64).inputs, &mut LossState::default())
            .unwrap();
        values(&out.losses).iter().zip(&c).map(|(l, w)| l * w).sum()
    };
    for (side, grad) in [(0, values(&gc)), (1, values(&gr))] {
        for (i, analytic) in grad.iter().enumerate() {
            let shifted = |by: f64| {
                let mut q = p.clone();
                let v = if side == 0 {
                    &mut q.policy_chosen
                } else {
                    &mut q.policy_rejected
                };
                v[i] += by;
                scalar(&q)
            };
            let h = 1e-6;
            let numeric = (shifted(h) - shifted(-h)) / (2.0 * h);
            let err = (numeric - analytic).abs() / analytic.abs().max(1e-3);
            assert!(
                err < 1e-6,
                "{objective}: side {side} pair {i}: fd {numeric} vs {analytic}"
            );
        }
    }
}

#[test]
fn f64_gradients_match_finite_differences() {
    let mut p = pairs();
    // Pair 0 at exactly zero margin: the kink trap 4 is about.
    p.ref_chosen[0] = p.policy_chosen[0];
    p.ref_rejected[0] = p.policy_rejected[0];
    // Pair 3 near ORPO's singularity: average chosen log-prob −1e−3.
    p.policy_chosen[3] = -6e-3;
    for objective in [
        "type = \"sigmoid\", beta = 0.1",
        "type = \"robust\", beta = 0.2, label_smoothing = 0.1",
        "type = \"ipo\", beta = 0.1",
        "type = \"exo_pair\", beta = 0.1",
        "type = \"nca_pair\", beta = 0.1",
        "type = \"apo_down\", beta = 0.1",
        "type = \"discopop\", beta = 0.5",
        "type = \"aot\", beta = 0.1, label_smoothing = 0.1",
        "type = \"aot_unpaired\", beta = 0.1",
        "type = \"simpo\", sft_weight = 0.3, label_smoothing = 0.1",
        "type = \"orpo\", beta = 0.5",
    ] {
        finite_difference_check(&toml_for(objective), &p);
    }
    finite_difference_check(
        "rpo_alpha = 0.7\nobjective = { type = \"sppo_hard\", beta = 0.5 }",
        &p,
    );
}

#[test]
fn extreme_margins_give_finite_losses_and_gradients() {
    let mut p = pairs();
    p.ref_chosen = p.policy_chosen.clone();
    p.ref_rejected = p.policy_rejected.clone();
    p.policy_chosen[1] += 1000.0; // margin +1000
    p.policy_rejected[2] += 1000.0; // margin −1000
    for objective in [
        "type = \"sigmoid\", beta = 1.0, label_smoothing = 0.1",
        "type = \"robust\", beta = 1.0, label_smoothing = 0.1",
        "type = \"exo_pair\", beta = 1.0",
        "type = \"nca_pair\", beta = 1.0",
        "type = \"bco_pair\", beta = 1.0",
        "type = \"apo_zero\", beta = 1.0",
        "type = \"discopop\", beta = 1.0",
        "type = \"sigmoid_norm\", beta = 10.0",
    ] {
        let loss = loss_from_toml(&toml_for(objective));
        let (out, gc, gr) = run(&loss, &build(&p, DType::F32), &[1.0; 5]);
        for v in [values(&out.losses), values(&gc), values(&gr)].concat() {
            assert!(v.is_finite(), "{objective}: {v}");
        }
        // The pair the policy gets right by 1000 nats costs (almost) nothing.
        assert!(
            values(&out.losses)[1] < values(&out.losses)[2],
            "{objective}"
        );
    }
    // ORPO with a chosen completion predicted with probability 1 (average log-prob exactly 0).
    let mut q = pairs();
    q.policy_chosen[0] = 0.0;
    let loss = loss_from_toml(&toml_for("type = \"orpo\""));
    let (out, gc, gr) = run(&loss, &build(&q, DType::F32), &[1.0; 5]);
    for v in [values(&out.losses), values(&gc), values(&gr)].concat() {
        assert!(v.is_finite(), "orpo: {v}");
    }
}

#[test]
fn aot_losses_do_not_depend_on_the_order_of_pairs() {
    let p = pairs();
    let order = [3, 0, 4, 1, 2];
    let permute = |v: &Vec<f64>| order.iter().map(|&i| v[i]).collect::<Vec<_>>();
    let q = Pairs {
        policy_chosen: permute(&p.policy_chosen),
        policy_rejected: permute(&p.policy_rejected),
        ref_chosen: permute(&p.ref_chosen),
        ref_rejected: permute(&p.ref_rejected),
        chosen_counts: permute(&p.chosen_counts),
        rejected_counts: permute(&p.rejected_counts),
    };
    for objective in ["type = \"aot\"", "type = \"aot_unpaired\""] {
        let loss = loss_from_toml(&toml_for(objective));
        let (a, ..) = run(&loss, &build(&p, DType::F32), &[1.0; 5]);
        let (b, ..) = run(&loss, &build(&q, DType::F32), &[1.0; 5]);
        assert_eq!(values(&a.losses), values(&b.losses), "{objective}");
    }
}

#[test]
fn bco_running_mean_is_explicit_state_that_survives_save_and_restore() {
    let loss = loss_from_toml(&toml_for("type = \"bco_pair\", beta = 0.1"));
    let first = build(&pairs(), DType::F32);
    let mut shifted = pairs();
    shifted.policy_chosen.iter_mut().for_each(|v| *v += 5.0);
    let second = build(&shifted, DType::F32);
    let mut straight = LossState::default();
    loss.compute(&first.inputs, &mut straight).unwrap();
    let saved = serde_json::to_string(&straight).unwrap();
    let expected = loss.compute(&second.inputs, &mut straight).unwrap();

    let mut restored: LossState = serde_json::from_str(&saved).unwrap();
    let resumed = loss.compute(&second.inputs, &mut restored).unwrap();
    assert_eq!(values(&expected.losses), values(&resumed.losses));
    assert_eq!(straight, restored);
    // A fresh state gives a different δ, hence different losses: the state matters.
    let fresh = loss
        .compute(&second.inputs, &mut LossState::default())
        .unwrap();
    assert_ne!(values(&expected.losses), values(&fresh.losses));
}
