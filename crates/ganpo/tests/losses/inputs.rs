//! What the losses accept: splitting `[chosen; rejected]` batches, detaching the reference, and
//! errors (never panics) for missing or malformed inputs.

use candle_core::{DType, Device, Tensor, Var};
use ganpo::logps::SequenceLogps;
use ganpo::losses::{LossInputs, LossState, TokenLogps};

use super::{build, loss_from_toml, values, vector};
use crate::invariants::{pairs, toml_for};

#[test]
fn the_reference_receives_no_gradient() {
    let p = pairs();
    let mut built = build(&p, DType::F32);
    let ref_chosen = Var::from_tensor(&vector(&p.ref_chosen, DType::F32)).unwrap();
    built.inputs.ref_chosen_logps = Some(ref_chosen.as_tensor().clone());
    let loss = loss_from_toml(&toml_for("type = \"sigmoid\""));
    let out = loss
        .compute(&built.inputs, &mut LossState::default())
        .unwrap();
    let grads = out.losses.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(ref_chosen.as_tensor()).is_none());
    assert!(grads.get(built.policy_chosen.as_tensor()).is_some());
}

#[test]
fn missing_or_malformed_inputs_are_errors_not_panics() {
    let p = pairs();
    let dpo = loss_from_toml(&toml_for("type = \"sigmoid\""));
    let mut no_ref = build(&p, DType::F32).inputs;
    no_ref.ref_chosen_logps = None;
    no_ref.ref_rejected_logps = None;
    let err = dpo.compute(&no_ref, &mut LossState::default()).unwrap_err();
    assert!(err.to_string().contains("reference"), "{err}");
    // Reference-free losses do not need it.
    let simpo = loss_from_toml(&toml_for("type = \"simpo\""));
    assert!(simpo.compute(&no_ref, &mut LossState::default()).is_ok());

    let mut short = build(&p, DType::F32).inputs;
    short.chosen_counts = vector(&[1.0, 2.0], DType::F32);
    assert!(dpo.compute(&short, &mut LossState::default()).is_err());

    let ld = loss_from_toml("ld_alpha = 0.5\nobjective = { type = \"sigmoid\" }");
    let err = ld
        .compute(&build(&p, DType::F32).inputs, &mut LossState::default())
        .unwrap_err();
    assert!(err.to_string().contains("token log-probs"), "{err}");
    let mut odd = build(&p, DType::F32).inputs;
    odd.policy_token_logps = Some(TokenLogps {
        token_logps: Tensor::zeros((9, 4), DType::F32, &Device::Cpu).unwrap(),
        mask: Tensor::zeros((9, 4), DType::F32, &Device::Cpu).unwrap(),
    });
    assert!(ld.compute(&odd, &mut LossState::default()).is_err());

    let wpo = loss_from_toml("use_weighting = true\nobjective = { type = \"sigmoid\" }");
    let err = wpo
        .compute(&build(&p, DType::F32).inputs, &mut LossState::default())
        .unwrap_err();
    assert!(err.to_string().contains("wpo_log_weights"), "{err}");
}

#[test]
fn inputs_split_a_chosen_then_rejected_batch() {
    let t = |v: &[f32]| Tensor::new(v, &Device::Cpu).unwrap();
    let rows = |v: &[f32]| {
        Tensor::new(v, &Device::Cpu)
            .unwrap()
            .reshape((4, 1))
            .unwrap()
    };
    let policy = SequenceLogps {
        logps: t(&[-1.0, -2.0, -3.0, -4.0]),
        counts: t(&[1.0, 2.0, 3.0, 4.0]),
        token_logps: rows(&[-1.0, -2.0, -3.0, -4.0]),
        mask: rows(&[1.0, 1.0, 1.0, 1.0]),
    };
    let reference_var = Var::from_tensor(&t(&[-5.0, -6.0, -7.0, -8.0])).unwrap();
    let reference = SequenceLogps {
        logps: reference_var.as_tensor().clone(),
        ..policy.clone()
    };
    let x = LossInputs::from_sequence_logps(&policy, Some(&reference)).unwrap();
    assert_eq!(values(&x.policy_chosen_logps), [-1.0, -2.0]);
    assert_eq!(values(&x.policy_rejected_logps), [-3.0, -4.0]);
    assert_eq!(values(x.ref_rejected_logps.as_ref().unwrap()), [-7.0, -8.0]);
    assert_eq!(values(&x.rejected_counts), [3.0, 4.0]);
    // The reference half is detached even when its log-probs were built from a variable (trap 3).
    let dpo = loss_from_toml(&toml_for("type = \"sigmoid\""));
    let out = dpo.compute(&x, &mut LossState::default()).unwrap();
    let grads = out.losses.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(reference_var.as_tensor()).is_none());
    let odd = SequenceLogps {
        logps: t(&[-1.0, -2.0, -3.0]),
        ..policy
    };
    assert!(LossInputs::from_sequence_logps(&odd, None).is_err());
}
