//! Outputs are crash-safe: directories are published by rename (replaced and rotated ones are moved
//! aside first), stale temporaries are removed, one run holds an output directory at a time, and
//! non-finite weights stop a run before anything is saved.

mod common;

use std::path::Path;

use common::fixture;
use ganpo::train::checkpoint_dir::{publish_dir, remove_stale_temporaries, save_atomically};
use ganpo::train::run_lock::{LOCK_FILE, RunLock};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn write(dir: &Path, text: &str) -> ganpo::Result<()> {
    std::fs::write(dir.join("weights"), text).map_err(|e| ganpo::Error::io("w", e))
}

#[test]
fn a_republished_directory_is_replaced_whole_and_a_failed_one_leaves_the_old() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    publish_dir(out, "final", |d| write(d, "one")).unwrap();
    publish_dir(out, "final", |d| write(d, "two")).unwrap();
    assert_eq!(names(out), ["final"]);
    assert_eq!(
        std::fs::read_to_string(out.join("final/weights")).unwrap(),
        "two"
    );
    let failed = publish_dir(out, "final", |d| {
        write(d, "half")?;
        Err(ganpo::Error::Checkpoint("disk full".into()))
    });
    assert!(failed.is_err());
    assert_eq!(names(out), ["final"], "no temporary left behind");
    assert_eq!(
        std::fs::read_to_string(out.join("final/weights")).unwrap(),
        "two"
    );
}

#[test]
fn rotation_and_restart_leave_only_complete_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    for step in [1, 2, 3] {
        save_atomically(out, step, 1, |d| write(d, &step.to_string())).unwrap();
    }
    assert_eq!(names(out), ["checkpoint-3"]);
    // What a kill can leave: a checkpoint never renamed into place, one half deleted.
    for stale in [".tmp-new-checkpoint-4-999", ".tmp-delete-checkpoint-2-999"] {
        std::fs::create_dir(out.join(stale)).unwrap();
        std::fs::write(out.join(stale).join("weights"), "partial").unwrap();
    }
    std::fs::write(out.join(".tmp-not-a-dir"), "").unwrap();
    assert_eq!(remove_stale_temporaries(out).unwrap(), 2);
    assert_eq!(names(out), [".tmp-not-a-dir", "checkpoint-3"]);
}

#[test]
fn one_run_holds_an_output_directory_and_dead_holders_are_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let lock = RunLock::acquire(&out).unwrap();
    let err = RunLock::acquire(&out).unwrap_err().to_string();
    assert!(
        err.contains(&format!("PID {}", std::process::id())),
        "{err}"
    );
    drop(lock);
    assert!(!out.join(LOCK_FILE).exists(), "released on drop");
    // A lock left by a process that has exited is taken over.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(out.join(LOCK_FILE), format!("{dead}\n")).unwrap();
    let lock = RunLock::acquire(&out).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join(LOCK_FILE)).unwrap().trim(),
        std::process::id().to_string()
    );
    drop(lock);
}

#[test]
fn a_second_train_on_the_same_directory_names_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let config = tmp.path().join("run.toml");
    std::fs::write(
        &config,
        format!(
            "[model]\npath = \"{}\"\n[data]\ntrain_file = \"{}\"\n[training]\noutput_dir = \"run\"\nmax_steps = 1\n",
            fixture("models/llama").display(),
            fixture("train/train.jsonl").display()
        ),
    )
    .unwrap();
    let _held = RunLock::acquire(&out).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_ganpo"))
        .args(["train", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        err.contains(&format!("PID {}", std::process::id())) && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn non_finite_weights_stop_the_run_before_any_checkpoint() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use common::config::ConfigText;
    use ganpo::train::setup::RunSetup;

    // As `ganpo train` runs: denormals flushed, so ε = 1e-45 is 0 and 0/0 updates are NaN.
    ganpo::cpu::init_compute_threads();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cfg = ConfigText::new(&out)
        .training("learning_rate = 1e-3\nsave_steps = 1\nmax_steps = 2")
        .tables("[optimizer]\nadam_epsilon = 1e-45")
        .build();
    let setup = RunSetup::new(&cfg).unwrap();
    let mut log = setup.open_log(false).unwrap();
    let RunSetup {
        mut trainer,
        train: data,
        ..
    } = setup;
    let stop = Arc::new(AtomicBool::new(false));
    let err = trainer
        .run(&data, None, &mut log, stop, |_, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("NaN or infinite") && err.contains("adam_epsilon"),
        "{err}"
    );
    assert_eq!(
        names(&out),
        ["metrics.jsonl"],
        "no checkpoint, no final model"
    );
}

#[test]
fn overwriting_an_output_dir_removes_the_earlier_runs_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    for step in [90, 100] {
        save_atomically(out, step, 0, |d| write(d, "old")).unwrap();
    }
    publish_dir(out, "final", |d| write(d, "old")).unwrap();
    std::fs::write(out.join("metrics.jsonl"), "{}\n").unwrap();
    assert_eq!(
        ganpo::train::checkpoint_dir::remove_previous_run(out).unwrap(),
        3
    );
    assert_eq!(names(out), ["metrics.jsonl"]);
    // The new run's checkpoints are then the newest ones.
    save_atomically(out, 10, 1, |d| write(d, "new")).unwrap();
    assert_eq!(names(out), ["checkpoint-10", "metrics.jsonl"]);
}
