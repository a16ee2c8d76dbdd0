//! Every loss and composable term against `tests/fixtures/losses/golden.json`, written by
//! `tools/golden/losses.py` from TRL 0.23.1's own loss functions (`DPOTrainer.dpo_loss`,
//! `CPOTrainer.cpo_loss`, `ORPOTrainer.odds_ratio_loss`, `RunningMoments`) or, where TRL 0.23 lacks
//! the loss, from transcriptions of TRL 1.x / the SimPO repository (each case names its reference).
//!
//! Tolerance: 1e−5 relative, measured as max |ours − theirs| / max |theirs| per tensor. The inputs are
//! f32 values and the references run in f64 on exactly those values, so the only error is our f32
//! arithmetic: a handful of roundings of 6e−8 each, amplified at most by the cancellation in a margin
//! of summed log-probs (|S| ≤ ~100 against margins of order 1: ~1e−6 of the loss scale). A wrong
//! convention (sum vs mean, ε sign, rewards, δ order, clamp, token positions) moves results by ≥ 1e−3.

use candle_core::{DType, Device, Tensor, Var};
use ganpo::losses::{LossConfig, LossInputs, LossState, TokenLogps, WpoLogWeights};
use serde_json::Value;

use super::vector;
use crate::common::{fixture, rel_err};

const TOL: f64 = 1e-5;

fn fixture_json() -> Value {
    let text = std::fs::read_to_string(fixture("losses/golden.json")).expect("golden.json");
    serde_json::from_str(&text).expect("golden.json parses")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn matrix(v: &Value) -> Tensor {
    let rows: Vec<Vec<f64>> = v.as_array().expect("rows").iter().map(floats).collect();
    let (r, c) = (rows.len(), rows[0].len());
    let flat: Vec<f32> = rows.concat().iter().map(|&x| x as f32).collect();
    Tensor::from_vec(flat, (r, c), &Device::Cpu).unwrap()
}

/// Compares one tensor with its expected values, recording the error.
fn check(report: &mut Vec<(String, f64)>, what: String, actual: &Tensor, expected: &Value) {
    let expected = vector(&floats(expected), DType::F64);
    let actual = actual.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
    report.push((what, rel_err(&actual, &expected.flatten_all().unwrap())));
}

fn assert_report(report: &[(String, f64)]) {
    let mut failed = Vec::new();
    for (what, err) in report {
        eprintln!("{what:60} rel err {err:.2e}");
        if err.is_nan() || *err > TOL {
            failed.push(format!("{what}: {err:.3e}"));
        }
    }
    assert!(
        failed.is_empty(),
        "over tolerance {TOL:e}:\n{}",
        failed.join("\n")
    );
}

#[test]
fn every_loss_matches_its_reference_in_value_rewards_and_gradient() {
    let golden = fixture_json();
    let batch = &golden["batch"];
    let f32v = |key: &str| vector(&floats(&batch[key]), DType::F32);
    let cotangent = f32v("cotangent");
    let mut report = Vec::new();
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "fixture lost cases");

    for case in cases {
        let name = case["name"].as_str().unwrap();
        let config: LossConfig = serde_json::from_value(case["loss"].clone())
            .unwrap_or_else(|e| panic!("{name}: config {}: {e}", case["loss"]));
        let loss = config.resolve().unwrap();
        let mut state = LossState::default();
        for (k, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            // A step may override the policy log-probs (BCO-pair runs several steps).
            let policy = |key: &str| match step.get(key) {
                Some(v) => vector(&floats(v), DType::F32),
                None => f32v(key),
            };
            let chosen = Var::from_tensor(&policy("policy_chosen_logps")).unwrap();
            let rejected = Var::from_tensor(&policy("policy_rejected_logps")).unwrap();
            let inputs = LossInputs {
                policy_chosen_logps: chosen.as_tensor().clone(),
                policy_rejected_logps: rejected.as_tensor().clone(),
                ref_chosen_logps: Some(f32v("ref_chosen_logps")),
                ref_rejected_logps: Some(f32v("ref_rejected_logps")),
                chosen_counts: f32v("chosen_counts"),
                rejected_counts: f32v("rejected_counts"),
                policy_token_logps: None,
                wpo_log_weights: Some(WpoLogWeights {
                    chosen: f32v("wpo_chosen_log_weights"),
                    rejected: f32v("wpo_rejected_log_weights"),
                }),
            };
            let out = loss.compute(&inputs, &mut state).unwrap();
            let grads = (&out.losses * &cotangent)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let tag = format!("{name}[{k}]");
            check(
                &mut report,
                format!("{tag} losses"),
                &out.losses,
                &step["losses"],
            );
            check(
                &mut report,
                format!("{tag} chosen_rewards"),
                &out.chosen_rewards,
                &step["chosen_rewards"],
            );
            check(
                &mut report,
                format!("{tag} rejected_rewards"),
                &out.rejected_rewards,
                &step["rejected_rewards"],
            );
            check(
                &mut report,
                format!("{tag} d/d policy_chosen_logps"),
                grads.get(chosen.as_tensor()).unwrap(),
                &step["grad_policy_chosen_logps"],
            );
            check(
                &mut report,
                format!("{tag} d/d policy_rejected_logps"),
                grads.get(rejected.as_tensor()).unwrap(),
                &step["grad_policy_rejected_logps"],
            );
            if let Some(mean) = step.get("bco_mean") {
                let expected = mean.as_f64().unwrap();
                let err = (state.bco_pair.mean - expected).abs() / expected.abs().max(1e-12);
                report.push((format!("{tag} bco running mean"), err));
            }
        }
    }
    assert_report(&report);
}

#[test]
fn ld_dpo_matches_its_reference_with_gradients_per_token() {
    let golden = fixture_json();
    let tok = &golden["token_batch"];
    let f32v = |key: &str| vector(&floats(&tok[key]), DType::F32);
    let mut report = Vec::new();
    for case in golden["token_cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let config: LossConfig = serde_json::from_value(case["loss"].clone()).unwrap();
        let loss = config.resolve().unwrap();
        let token_logps = Var::from_tensor(&matrix(&tok["token_logps"])).unwrap();
        let inputs = LossInputs {
            policy_chosen_logps: f32v("policy_chosen_logps"),
            policy_rejected_logps: f32v("policy_rejected_logps"),
            ref_chosen_logps: Some(f32v("ref_chosen_logps")),
            ref_rejected_logps: Some(f32v("ref_rejected_logps")),
            chosen_counts: f32v("chosen_counts"),
            rejected_counts: f32v("rejected_counts"),
            policy_token_logps: Some(TokenLogps {
                token_logps: token_logps.as_tensor().clone(),
                mask: matrix(&tok["mask"]),
            }),
            wpo_log_weights: None,
        };
        let out = loss.compute(&inputs, &mut LossState::default()).unwrap();
        let grads = (&out.losses * f32v("cotangent"))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let step = &case["steps"][0];
        check(
            &mut report,
            format!("{name} losses"),
            &out.losses,
            &step["losses"],
        );
        check(
            &mut report,
            format!("{name} chosen_rewards"),
            &out.chosen_rewards,
            &step["chosen_rewards"],
        );
        check(
            &mut report,
            format!("{name} rejected_rewards"),
            &out.rejected_rewards,
            &step["rejected_rewards"],
        );
        let expected: Vec<f64> = step["grad_token_logps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        check(
            &mut report,
            format!("{name} d/d token_logps"),
            grads.get(token_logps.as_tensor()).unwrap(),
            &Value::from(expected),
        );
    }
    assert_report(&report);
}

#[test]
fn fixture_header_records_versions_and_seed() {
    let golden = fixture_json();
    let header = &golden["header"];
    assert!(header["seed"].as_u64().is_some());
    assert!(
        header["versions"]["trl"]
            .as_str()
            .unwrap()
            .starts_with("0.23")
    );
    assert!(header["versions"]["torch"].is_string());
}
