//! Fault injection: `ganpo train` (DPO + GANPO, a checkpoint every step, rotation keeping two) is
//! killed with SIGKILL at spread-out moments, so kills land while checkpoints are written, renamed
//! and rotated and while `final/` is written. Every `checkpoint-N` and `final/` left must be
//! complete (it loads and resumes), and a resume with the CLI must take over the dead run's lock,
//! clear its temporaries and finish.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::config::ConfigText;
use ganpo::config::train::TrainConfig;
use ganpo::train::trainer::Trainer;

const STEPS: u64 = 24;

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("run.toml");
    std::fs::write(
        &path,
        ConfigText::new(Path::new("out"))
            .training(&format!(
                "per_device_train_batch_size = 4\nlearning_rate = 1e-3\nmax_steps = {STEPS}\n\
                 save_steps = 1\nsave_total_limit = 2\nlogging_steps = 1"
            ))
            .tables("[ganpo]\n[ganpo.discriminator]\nwidth = 32\ndepth = 1\nheads = 4\nmax_positions = 64")
            .text(),
    )
    .unwrap();
    path
}

fn train(config: &Path, resume: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganpo"));
    cmd.args(["train", "--config", config.to_str().unwrap()]);
    if let Some(dir) = resume {
        cmd.args(["--resume", dir.to_str().unwrap()]);
    }
    cmd.stderr(std::process::Stdio::null());
    cmd
}

/// Every published directory under `out` is complete; returns the newest checkpoint.
fn check_complete(config: &TrainConfig, out: &Path) -> Option<std::path::PathBuf> {
    let mut newest: Option<(u64, std::path::PathBuf)> = None;
    for entry in std::fs::read_dir(out).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(step) = name.strip_prefix("checkpoint-") {
            let step: u64 = step.parse().unwrap();
            Trainer::resume(config.clone(), &path)
                .unwrap_or_else(|e| panic!("{name} is incomplete: {e}"));
            if newest.as_ref().is_none_or(|(s, _)| step > *s) {
                newest = Some((step, path));
            }
        } else if name == "final" {
            ganpo::model::load_model(
                &path,
                ganpo::model::Trainability::Frozen,
                candle_core::DType::F32,
                &candle_core::Device::Cpu,
            )
            .unwrap_or_else(|e| panic!("final/ is incomplete: {e}"));
        } else {
            assert!(
                name == "metrics.jsonl" || name == ".lock" || name.starts_with(".tmp-"),
                "unexpected {name}"
            );
        }
    }
    newest.map(|(_, p)| p)
}

#[test]
fn kills_during_checkpointing_leave_only_complete_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let config_path = write_config(tmp.path());
    let config = TrainConfig::load(&config_path, &[]).unwrap();
    let out = tmp.path().join("out");
    // How long a whole run takes here, to spread the kills over it.
    let started = std::time::Instant::now();
    assert!(train(&config_path, None).status().unwrap().success());
    let whole = started.elapsed();
    let trials = std::env::var("GANPO_FAULT_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8u32);
    let mut resumed_once = false;
    for trial in 0..trials {
        std::fs::remove_dir_all(&out).unwrap();
        let mut child = train(&config_path, None).spawn().unwrap();
        // From early (model loading) to late (final/ being written).
        let at = whole.mul_f64(0.2 + 0.9 * f64::from(trial) / f64::from(trials.max(1)));
        std::thread::sleep(at.max(Duration::from_millis(5)));
        let _ = child.kill();
        let _ = child.wait();
        if !out.exists() {
            continue;
        }
        let Some(newest) = check_complete(&config, &out) else {
            continue;
        };
        if !resumed_once && !out.join("final").exists() {
            // The killed run's lock names a dead PID: the resume takes it over and finishes.
            let status = train(&config_path, Some(&newest)).status().unwrap();
            assert!(status.success(), "resume from {}", newest.display());
            assert!(out.join("final").exists());
            check_complete(&config, &out);
            let left: Vec<String> = std::fs::read_dir(&out)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect();
            assert!(left.is_empty(), "lock and temporaries removed: {left:?}");
            resumed_once = true;
        }
    }
    assert!(resumed_once, "some kill left a resumable checkpoint");
}
