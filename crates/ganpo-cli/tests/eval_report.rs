//! The evaluation report (`ganpo::eval::report`) and `ganpo eval`: with policy = reference every
//! divergence is zero (KL, token KL, MMD within its 2/n bias bound, probe at chance, win rate ½,
//! DPO loss ln 2); after a short DPO + GANPO run they all move; at T = 1 the Monte-Carlo sequence
//! KL agrees with the summed exact token KLs (the chain rule of KL); the CLI writes one row per
//! temperature.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use candle_core::{DType, Device, Tensor};
use common::fixture;
use ganpo::config::train::TrainConfig;
use ganpo::data::{DataConfig, PreferenceDataset};
use ganpo::eval::pool::mean_pool;
use ganpo::eval::{
    EvalReport, EvalSettings, ProbeConfig, evaluate, linear_probe, prompts_from_pairs,
};
use ganpo::model::{LoadedModel, Trainability, load_model};
use ganpo::train::run::RunOutcome;
use ganpo::train::setup::RunSetup;
use ganpo_cli::judge::StructuredTaskJudge;

fn load(path: &Path) -> LoadedModel {
    load_model(path, Trainability::Frozen, DType::F32, &Device::Cpu).unwrap()
}

fn report(policy: &LoadedModel, reference: &LoadedModel, settings: &EvalSettings) -> EvalReport {
    let data = PreferenceDataset::load(
        &fixture("train/eval.jsonl"),
        &policy.tokenizer,
        &DataConfig::default(),
    )
    .unwrap();
    let prompts = prompts_from_pairs(&data.pairs, &policy.tokenizer).unwrap();
    evaluate(
        policy,
        reference,
        Some(&data.pairs),
        &prompts,
        Some(&StructuredTaskJudge),
        settings,
    )
    .unwrap()
}

fn settings(temperatures: &[f64], samples: usize) -> EvalSettings {
    EvalSettings {
        temperatures: temperatures.to_vec(),
        samples,
        max_new_tokens: 12,
        ..EvalSettings::default()
    }
}

/// Trains examples/ganpo_tiny.toml (DPO + GANPO, 24 steps) into `out` and returns the final model.
fn train_tiny(out: &Path) -> std::path::PathBuf {
    let overrides = [format!("training.output_dir=\"{}\"", out.display())];
    // Its paths are relative to examples/, as every config file's are.
    let cfg = TrainConfig::load(
        &common::repo_root().join("examples/ganpo_tiny.toml"),
        &overrides,
    )
    .unwrap();
    let setup = RunSetup::new(&cfg).unwrap();
    let mut log = setup.open_log(false).unwrap();
    let RunSetup {
        mut trainer,
        train,
        eval,
        ..
    } = setup;
    let stop = Arc::new(AtomicBool::new(false));
    match trainer
        .run(&train, eval.as_ref(), &mut log, stop, |_, _, _| {})
        .unwrap()
    {
        RunOutcome::Finished { final_model, .. } => final_model,
        other => panic!("training did not finish: {other:?}"),
    }
}

#[test]
fn identical_models_show_no_divergence_anywhere() {
    let m = load(&fixture("models/llama"));
    let r = report(&m, &m, &settings(&[0.0, 1.0], 2));
    let pref = r.preference.as_ref().unwrap();
    assert!((pref["eval_loss"] - std::f64::consts::LN_2).abs() < 1e-6);
    assert_eq!(pref["eval_rewards/margins"], 0.0);
    let latent = r.latent.unwrap();
    // Identical sets: MMD²_u = 2(k̄ − 1)/n, in [−2/n, 0].
    let n = latent.sequences as f64;
    assert_eq!(latent.sequences, 64);
    assert!(
        latent.mmd2 <= 0.0 && latent.mmd2 >= -2.0 / n,
        "{}",
        latent.mmd2
    );
    // Each latent appears once per class: whatever the probe predicts, it is right half the time.
    assert_eq!(latent.probe.test_accuracy, 0.5);
    assert_eq!(r.temperatures.len(), 2);
    for row in &r.temperatures {
        assert_eq!(row.samples, 64);
        assert!(row.sequence_kl.abs() < 1e-9, "{}", row.sequence_kl);
        assert!(row.token_kl.abs() < 1e-7, "{}", row.token_kl);
        assert!(row.tokens > 0 && row.length_mean > 0.0);
        // Same model, same seeds: identical samples, all ties.
        let j = row.judge.as_ref().unwrap();
        assert_eq!(j.win_rate, 0.5);
        assert_eq!(j.ties, 64);
        assert_eq!(j.score_mean, j.reference_score_mean);
        assert!(j.components.contains_key("structure"));
        assert!(j.structure_valid_rate.is_some());
    }
}

#[test]
fn a_trained_policy_diverges_and_sequence_kl_matches_summed_token_kl() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = load(&fixture("models/llama"));
    let base = report(&reference, &reference, &settings(&[1.0], 1));
    let policy = load(&train_tiny(tmp.path()));
    let r = report(&policy, &reference, &settings(&[1.0], 8));
    let pref = r.preference.as_ref().unwrap();
    assert!(pref["eval_rewards/margins"] > 0.0, "{pref:?}");
    assert!(pref["eval_loss"] < std::f64::consts::LN_2);
    let row = &r.temperatures[0];
    eprintln!("{row:?}\n{:?}\n{:?}", r.latent, base.latent);
    assert!(row.token_kl > 1e-4, "token KL {}", row.token_kl);
    assert!(row.sequence_kl > 0.0, "sequence KL {}", row.sequence_kl);
    // Chain rule: KL over sequences = E_y Σ_t KL_t, so at T = 1 the Monte-Carlo estimate and the
    // summed exact token KLs estimate the same number (up to sampling noise).
    let summed_token_kl = row.token_kl * row.tokens as f64 / row.samples as f64;
    assert!(
        (row.sequence_kl - summed_token_kl).abs() <= 4.0 * row.sequence_kl_stderr + 1e-3,
        "sequence KL {} ± {} vs summed token KL {summed_token_kl}",
        row.sequence_kl,
        row.sequence_kl_stderr
    );
    let (moved, still) = (r.latent.unwrap(), base.latent.unwrap());
    assert!(
        moved.mmd2 > still.mmd2 + 2.0 / still.sequences as f64,
        "{moved:?}"
    );
    assert!(moved.probe.test_accuracy > 0.6, "{moved:?}");
}

#[test]
fn probe_separates_shifted_latents_and_not_identical_ones() {
    // Pair i gives one latent per model; the policy's are shifted along the first axis by more
    // than the spread of the other axes, so the direction is learnable from half the pairs.
    let reference: Vec<Vec<f64>> = (0..40)
        .map(|i| {
            vec![
                (i as f64 * 0.37).sin(),
                (i as f64 * 0.11).cos(),
                i as f64 % 3.0,
            ]
        })
        .collect();
    let policy: Vec<Vec<f64>> = reference
        .iter()
        .map(|v| vec![v[0] + 4.0, v[1], v[2]])
        .collect();
    let groups: Vec<usize> = (0..40).collect();
    let cfg = ProbeConfig::default();
    let shifted = linear_probe(&policy, &reference, &groups, &cfg).unwrap();
    assert_eq!(shifted.test_accuracy, 1.0);
    assert_eq!((shifted.train_size, shifted.test_size), (40, 40));
    let same = linear_probe(&reference, &reference, &groups, &cfg).unwrap();
    assert_eq!(same.test_accuracy, 0.5);
    assert!(linear_probe(&policy[..1], &reference[..1], &groups[..1], &cfg).is_err());
}

#[test]
fn mean_pool_ignores_padding() {
    let hidden = Tensor::new(
        &[
            [[1f32, 2.], [3., 4.], [100., 100.]],
            [[5., 6.], [7., 8.], [9., 10.]],
        ],
        &Device::Cpu,
    )
    .unwrap();
    let mask = Tensor::new(&[[1u32, 1, 0], [1, 1, 1]], &Device::Cpu).unwrap();
    let pooled = mean_pool(&hidden, &mask).unwrap();
    assert_eq!(pooled, vec![vec![2.0, 3.0], vec![7.0, 8.0]]);
    let empty = Tensor::new(&[[0u32, 0, 0], [1, 1, 1]], &Device::Cpu).unwrap();
    assert!(mean_pool(&hidden, &empty).is_err());
}

#[test]
fn cli_writes_one_row_per_temperature() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report.json");
    let model = fixture("models/llama");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ganpo"))
        .args(["eval", "--policy"])
        .arg(&model)
        .arg("--reference")
        .arg(&model)
        .arg("--data")
        .arg(fixture("train/eval.jsonl"))
        .args([
            "--judge",
            "structured",
            "--temperatures",
            "0,0.7,1.5",
            "--max-new-tokens",
            "6",
            "--output",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("probe_accuracy"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let rows = json["temperatures"].as_array().unwrap();
    let temps: Vec<f64> = rows
        .iter()
        .map(|r| r["temperature"].as_f64().unwrap())
        .collect();
    assert_eq!(temps, vec![0.0, 0.7, 1.5]);
    assert!(rows.iter().all(|r| r["judge"]["win_rate"] == 0.5));
    assert_eq!(json["policy"], model.display().to_string());
    assert!(json["preference"]["eval_loss"].is_f64());
    assert!(json["latent"]["probe"]["test_accuracy"].is_f64());
    assert!(json["date"].as_str().unwrap().ends_with('Z'));
    // Without --data or --prompts there is nothing to evaluate: a clear error.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_ganpo"))
        .args(["eval", "--policy"])
        .arg(&model)
        .arg("--reference")
        .arg(&model)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--data"));
}
