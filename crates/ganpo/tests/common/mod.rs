//! Helpers shared by the integration tests of both crates: fixture paths, tensor comparison, and a
//! training run driven as `ganpo train` drives it. (`ganpo-cli`'s tests include this file and add
//! the helpers that run the binary.)
#![allow(dead_code)]

pub mod config;
pub mod lora;

use std::path::PathBuf;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use candle_core::{DType, Device, Tensor};
use ganpo::config::train::TrainConfig;
use ganpo::train::metrics::Metrics;
use ganpo::train::run::RunOutcome;
use ganpo::train::setup::RunSetup;
use ganpo::train::trainer::Trainer;

/// The repository root: the workspace's shared files (`tests/fixtures/`, `examples/`, README.md)
/// live there, two levels above each member crate.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures/<rel>` of the repository.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests").join("fixtures").join(rel)
}

/// Loads every tensor of a safetensors fixture.
pub fn load_golden(path: &std::path::Path) -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).expect("golden fixture loads")
}

/// `max |a − b| / max |b|`: the error relative to the scale of the expected tensor.
pub fn rel_err(actual: &Tensor, expected: &Tensor) -> f64 {
    assert_eq!(actual.dims(), expected.dims(), "shapes differ");
    let a = actual.to_dtype(DType::F64).unwrap();
    let b = expected.to_dtype(DType::F64).unwrap();
    let diff = (a - &b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let scale = b
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
        .max(1e-12);
    diff / scale
}

/// Asserts `rel_err(actual, expected) <= tol`, naming `what`.
pub fn assert_close(actual: &Tensor, expected: &Tensor, tol: f64, what: &str) {
    let err = rel_err(actual, expected);
    eprintln!("{what}: rel err {err:.3e}");
    assert!(
        err <= tol,
        "{what}: relative error {err:.3e} exceeds {tol:.1e}"
    );
}

/// The tiny model fixtures of every supported architecture variant (`tools/golden/models.py`).
pub const VARIANTS: [&str; 7] = [
    "llama",
    "llama3_scaled_tied",
    "qwen2",
    "qwen2_tied",
    "mistral",
    "gemma",
    "gemma2",
];

/// Runs a config to the end, returning every step's metrics and the trainer.
pub fn run(cfg: TrainConfig, resume: Option<&std::path::Path>) -> (Vec<Metrics>, Trainer) {
    run_until(cfg, resume, None)
}

/// Like [`run`], raising the stop flag (as Ctrl-C does) after step `stop_at`.
pub fn run_until(
    cfg: TrainConfig,
    resume: Option<&std::path::Path>,
    stop_at: Option<u64>,
) -> (Vec<Metrics>, Trainer) {
    let trainer = match resume {
        None => Trainer::new(cfg.clone()).unwrap(),
        Some(dir) => Trainer::resume(cfg.clone(), dir).unwrap(),
    };
    let setup = RunSetup::around(trainer).unwrap();
    let mut log = setup.open_log(resume.is_some()).unwrap();
    let RunSetup {
        mut trainer,
        train,
        eval,
        ..
    } = setup;
    let mut steps = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let outcome = trainer
        .run(&train, eval.as_ref(), &mut log, stop, |step, _, m| {
            steps.push(m.clone());
            if Some(step) == stop_at {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        })
        .unwrap();
    match stop_at {
        None => assert!(matches!(outcome, RunOutcome::Finished { .. })),
        Some(step) => assert!(
            matches!(outcome, RunOutcome::Interrupted { ref checkpoint } if checkpoint.ends_with(format!("checkpoint-{step}")))
        ),
    }
    (steps, trainer)
}
