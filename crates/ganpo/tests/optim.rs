//! AdamW, gradient clipping and schedules against PyTorch / transformers (fixtures from
//! `tools/golden/optim.py`), and optimizer-state save/restore.

mod common;

use candle_core::{Device, Tensor, Var, backprop::GradStore};
use common::{assert_close, fixture, load_golden};
use ganpo::optim::{AdamW, AdamWConfig, Schedule, ScheduleKind, clip_grad_norm};
use serde_json::Value;

const NAMES: [&str; 3] = ["layer.weight", "layer.bias", "model.norm.weight"];

fn golden_json() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("optim/golden.json")).unwrap()).unwrap()
}

/// A GradStore holding `grads[i]` for `vars[i]`, built by back-propagating Σ var·grad.
fn grads_for(vars: &[(String, Var)], grads: &[Tensor]) -> GradStore {
    let mut total = Tensor::zeros((), candle_core::DType::F32, &Device::Cpu).unwrap();
    for ((_, v), g) in vars.iter().zip(grads) {
        total = (total + (v.as_tensor() * g).unwrap().sum_all().unwrap()).unwrap();
    }
    total.backward().unwrap()
}

type Fixture = (
    std::collections::HashMap<String, Tensor>,
    Value,
    Vec<(String, Var)>,
    AdamW,
    Schedule,
);

fn setup() -> Fixture {
    let golden = load_golden(&fixture("optim/golden.safetensors"));
    let meta = golden_json();
    let vars: Vec<(String, Var)> = NAMES
        .iter()
        .map(|n| {
            (
                n.to_string(),
                Var::from_tensor(&golden[&format!("init.{n}")]).unwrap(),
            )
        })
        .collect();
    let config: AdamWConfig = serde_json::from_value(meta["hp"].clone()).unwrap();
    let opt = AdamW::new(&vars, config).unwrap();
    let steps = meta["steps"].as_u64().unwrap();
    let schedule = Schedule {
        learning_rate: meta["lr"].as_f64().unwrap(),
        kind: ScheduleKind::Cosine,
        warmup_steps: meta["warmup_steps"].as_u64().unwrap(),
        total_steps: steps,
    };
    (golden, meta, vars, opt, schedule)
}

fn run_steps(
    golden: &std::collections::HashMap<String, Tensor>,
    meta: &Value,
    vars: &[(String, Var)],
    opt: &mut AdamW,
    schedule: &Schedule,
    range: std::ops::Range<u64>,
) {
    let max_norm = meta["max_norm"].as_f64().unwrap();
    for step in range {
        let grads: Vec<Tensor> = NAMES
            .iter()
            .map(|n| golden[&format!("grad{step}.{n}")].clone())
            .collect();
        let mut store = grads_for(vars, &grads);
        let norm = clip_grad_norm(&mut store, vars, Some(max_norm)).unwrap();
        let expected_norm = meta["grad_norms"][step as usize].as_f64().unwrap();
        assert!(
            (norm - expected_norm).abs() <= 1e-5 * expected_norm,
            "step {step}: grad norm {norm} vs {expected_norm}"
        );
        let lr = schedule.lr(step);
        let expected_lr = meta["lrs"][step as usize].as_f64().unwrap();
        assert!(
            (lr - expected_lr).abs() <= 1e-12,
            "step {step}: lr {lr} vs {expected_lr}"
        );
        opt.step(&store, lr).unwrap();
        for (name, var) in vars {
            // Six f32 AdamW steps; PyTorch fuses differently (addcdiv), so agreement is to rounding.
            assert_close(
                var.as_tensor(),
                &golden[&format!("after{step}.{name}")],
                1e-5,
                &format!("step {step} {name}"),
            );
        }
    }
}

#[test]
fn adamw_with_clipping_and_cosine_schedule_matches_pytorch() {
    let (golden, meta, vars, mut opt, schedule) = setup();
    run_steps(
        &golden,
        &meta,
        &vars,
        &mut opt,
        &schedule,
        0..schedule.total_steps,
    );
}

#[test]
fn optimizer_state_round_trips_through_a_file() {
    let (golden, meta, vars, mut opt, schedule) = setup();
    run_steps(&golden, &meta, &vars, &mut opt, &schedule, 0..3);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("adamw.safetensors");
    let step = opt.save_state(&path).unwrap();
    // A fresh optimizer restored from the file continues exactly like the original.
    let mut restored = AdamW::new(&vars, *opt.config()).unwrap();
    restored.load_state(&path, step).unwrap();
    assert_eq!(restored.step_count(), 3);
    run_steps(
        &golden,
        &meta,
        &vars,
        &mut restored,
        &schedule,
        3..schedule.total_steps,
    );
}

#[test]
fn state_for_another_model_is_rejected() {
    let (_, _, vars, opt, _) = setup();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("adamw.safetensors");
    opt.save_state(&path).unwrap();
    let other = vec![(
        "other.weight".to_string(),
        Var::zeros((2, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
    )];
    let err = AdamW::new(&other, AdamWConfig::default())
        .unwrap()
        .load_state(&path, 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("other.weight"), "{err}");
    let _ = vars;
}

#[test]
fn schedules_match_transformers() {
    let meta = golden_json();
    let s = &meta["schedules"];
    for (kind, name) in [
        (ScheduleKind::Constant, "constant"),
        (ScheduleKind::Linear, "linear"),
        (ScheduleKind::Cosine, "cosine"),
    ] {
        let schedule = Schedule {
            learning_rate: 1.0,
            kind,
            warmup_steps: s["warmup_steps"].as_u64().unwrap(),
            total_steps: s["total_steps"].as_u64().unwrap(),
        };
        for (k, expected) in s["values"][name].as_array().unwrap().iter().enumerate() {
            let expected = expected.as_f64().unwrap();
            let got = schedule.lr(k as u64);
            assert!(
                (got - expected).abs() < 1e-12,
                "{name} step {k}: {got} vs {expected}"
            );
        }
    }
    assert_eq!(Schedule::warmup_from_ratio(0.1, 25), 3);
}
