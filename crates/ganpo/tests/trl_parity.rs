//! Parity with TRL's own `DPOTrainer`: four optimizer steps of sigmoid DPO (TRL 0.23.1) and of IPO
//! (TRL 0.27.2) on the tiny Llama,
//! every logged metric at every step against tests/fixtures/trl_dpo/golden.json (written by
//! tools/golden/trl_dpo_steps.py, which records the versions and settings in the file's header).
//!
//! What the comparison covers end to end: TRL's tokenization and `[chosen; rejected]` layout, the
//! policy and reference forwards, the DPO loss and rewards, TRL's metric reductions (means over the
//! step's pairs, computed before the step's update), the pre-clip gradient norm, clipping to 1.0,
//! AdamW (transformers' defaults) and the linear schedule (the rate the step used).

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use common::config::ConfigText;
use common::fixture;
use ganpo::config::train::TrainConfig;
use ganpo::train::metrics::Metrics;
use ganpo::train::setup::RunSetup;
use serde_json::Value;

/// The settings of the golden run, in ganpo's config (file order: `shuffle = false`, as the
/// script replaces TRL's sampler with a `SequentialSampler`).
fn config(out: &std::path::Path, loss_type: &str) -> TrainConfig {
    ConfigText::new(out)
        .training(
            "max_steps = 4\nper_device_train_batch_size = 8\ngradient_accumulation_steps = 1\n\
             learning_rate = 1e-3\nlr_scheduler_type = \"linear\"\nwarmup_steps = 0\nmax_grad_norm = 1.0\n\
             shuffle = false\nlogging_steps = 1\nsave_steps = 0",
        )
        .tables(&format!(
            "[loss.objective]\ntype = \"{loss_type}\"\nbeta = 0.1\n[optimizer]\nadam_beta1 = 0.9\n\
             adam_beta2 = 0.999\nadam_epsilon = 1e-8\nweight_decay = 0.0"
        ))
        .build()
}

/// Trains the config to the end and returns each step's metrics.
fn run(cfg: TrainConfig) -> Vec<Metrics> {
    let setup = RunSetup::new(&cfg).unwrap();
    let mut log = setup.open_log(false).unwrap();
    let RunSetup {
        mut trainer, train, ..
    } = setup;
    let mut steps = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    trainer
        .run(&train, None, &mut log, stop, |_, _, m| {
            steps.push(m.clone())
        })
        .unwrap();
    steps
}

/// Relative tolerance, against `max(|trl|, floor)` with a per-metric floor (below). Both sides run
/// the same f32 arithmetic in a different order (candle vs PyTorch kernels), so values differ by
/// rounding only: f32's epsilon is 6e-8, a sequence log-prob sums ~5 token terms each from a
/// 96-way log-softmax through 3 layers, and four AdamW steps carry the differences forward (Adam
/// divides by √v, which can amplify them on near-zero gradient entries). Observed worst case:
/// 1.4e-7 relative (log-probs), so 1e-5 leaves ~70× headroom while anything semantic is orders of
/// magnitude larger: TRL's default bf16 autocast moved the log-probs by 1e-3 relative, a
/// one-token mask shift moves them by >10%, a schedule read one step late moves the rate by 25%.
const RTOL: f64 = 1e-5;

/// Each metric and the floor of its scale. The floor matters where the value is a small
/// difference of large terms: a reward is β·(policy − reference log-prob), ~0.1 × 15, so its
/// rounding error scales with 1.0 however close to 0 the reward is; the mean logit is a mean of
/// O(1) logits that nearly cancel. Accuracies are fractions of 8 pairs and must match exactly.
const METRICS: [(&str, f64); 11] = [
    ("loss", 0.0),
    ("rewards/chosen", 1.0),
    ("rewards/rejected", 1.0),
    ("rewards/margins", 1.0),
    ("rewards/accuracies", 0.0),
    ("logps/chosen", 0.0),
    ("logps/rejected", 0.0),
    ("logits/chosen", 1.0),
    ("logits/rejected", 1.0),
    ("grad_norm", 0.0),
    ("learning_rate", 0.0),
];

/// Runs the golden config with `loss_type` and compares every metric at every step with `file`
/// (written by TRL `version`).
fn check(loss_type: &str, file: &str, version: &str) {
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(file)).unwrap()).unwrap();
    assert_eq!(golden["header"]["versions"]["trl"], version);
    assert_eq!(golden["header"]["settings"]["loss_type"], loss_type);
    let expected = golden["steps"].as_array().unwrap();
    assert_eq!(expected.len(), 4);
    let tmp = tempfile::tempdir().unwrap();
    let actual = run(config(tmp.path(), loss_type));
    assert_eq!(actual.len(), 4, "ganpo ran {} steps", actual.len());
    let mut failures = Vec::new();
    for (name, floor) in METRICS {
        let mut worst = 0f64;
        for (step, (a, e)) in actual.iter().zip(expected).enumerate() {
            let a = a[name];
            let e = e[name].as_f64().unwrap();
            let diff = (a - e).abs();
            worst = worst.max(diff);
            if diff > RTOL * e.abs().max(floor) {
                failures.push(format!(
                    "step {}: {name}: ganpo {a:.9e}, trl {e:.9e}",
                    step + 1
                ));
            }
        }
        eprintln!("{loss_type}: {name}: max |ganpo − trl| = {worst:.3e}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn four_dpo_steps_match_trl() {
    check("sigmoid", "trl_dpo/golden.json", "0.23.1");
}

/// IPO through TRL 0.27.2: its `logps/chosen` and `logps/rejected` are the per-token averages
/// its loss reads, and ganpo logs the same.
#[test]
fn four_ipo_steps_match_trl_metric_for_metric() {
    check("ipo", "trl_dpo/golden_ipo.json", "0.27.2");
}

/// The comparison above is not vacuous: the four steps move every metric away from step 1's
/// (policy = reference: loss ln 2, rewards 0), so the updates themselves are compared.
#[test]
fn the_golden_run_trains() {
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("trl_dpo/golden.json")).unwrap())
            .unwrap();
    let steps = golden["steps"].as_array().unwrap();
    assert_eq!(
        steps[0]["loss"].as_f64().unwrap(),
        std::f64::consts::LN_2 as f32 as f64
    );
    for s in &steps[1..] {
        assert!(s["rewards/margins"].as_f64().unwrap().abs() > 1e-4, "{s}");
        assert!(s["loss"].as_f64().unwrap() < std::f64::consts::LN_2, "{s}");
    }
}
