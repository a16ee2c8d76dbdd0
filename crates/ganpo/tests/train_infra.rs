//! Checkpoint directories are atomic and rotated; the data order is a seeded permutation.

use ganpo::train::checkpoint_dir::{latest_checkpoint, list_checkpoints, save_atomically};
use ganpo::train::data_order::epoch_order;
use ganpo::train::metrics::{MetricsAverager, MetricsLog};

#[test]
fn failed_save_leaves_no_partial_checkpoint_and_keeps_the_last_good_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    save_atomically(out, 10, 0, |d| {
        std::fs::write(d.join("a"), "ten").map_err(|e| ganpo::Error::io("w", e))
    })
    .unwrap();
    let err = save_atomically(out, 20, 0, |d| {
        std::fs::write(d.join("a"), "half").unwrap();
        Err(ganpo::Error::Checkpoint("disk full".into()))
    });
    assert!(err.is_err());
    let names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["checkpoint-10".to_string()],
        "no temp dir or partial checkpoint left"
    );
    let latest = latest_checkpoint(out).unwrap().unwrap();
    assert_eq!(std::fs::read_to_string(latest.join("a")).unwrap(), "ten");
}

#[test]
fn only_the_newest_k_checkpoints_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    for step in [5, 10, 15, 20] {
        save_atomically(tmp.path(), step, 2, |d| {
            std::fs::write(d.join("s"), step.to_string()).map_err(|e| ganpo::Error::io("w", e))
        })
        .unwrap();
    }
    let steps: Vec<u64> = list_checkpoints(tmp.path())
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(steps, vec![15, 20]);
    // Numeric, not lexicographic, order: 100 is newer than 20.
    save_atomically(tmp.path(), 100, 0, |_| Ok(())).unwrap();
    assert!(
        latest_checkpoint(tmp.path())
            .unwrap()
            .unwrap()
            .ends_with("checkpoint-100")
    );
}

#[test]
fn epoch_order_is_a_seeded_permutation() {
    let a = epoch_order(50, 7, 0, true);
    assert_eq!(
        a,
        epoch_order(50, 7, 0, true),
        "same seed and epoch, same order"
    );
    assert_ne!(a, epoch_order(50, 7, 1, true), "a new epoch reshuffles");
    assert_ne!(
        a,
        epoch_order(50, 8, 0, true),
        "another seed, another order"
    );
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    assert_eq!(epoch_order(5, 7, 0, false), vec![0, 1, 2, 3, 4]);
}

#[test]
fn metrics_log_writes_config_header_then_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("metrics.jsonl");
    let mut log = MetricsLog::open(&path, &serde_json::json!({"beta": 0.1}), None).unwrap();
    let mut avg = MetricsAverager::default();
    avg.add(&[("loss".to_string(), 1.0)].into());
    avg.add(
        &[
            ("loss".to_string(), 2.0),
            ("grad_norm".to_string(), f64::NAN),
        ]
        .into(),
    );
    log.log(3, 0.5, &avg.take()).unwrap();
    assert!(avg.is_empty());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["config"]["beta"], 0.1);
    assert_eq!(lines[1]["step"], 3);
    assert_eq!(lines[1]["loss"], 1.5);
    assert_eq!(lines[1]["grad_norm"], "NaN");
}

#[test]
fn metrics_log_restarts_fresh_and_drops_steps_after_a_resumed_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("metrics.jsonl");
    let steps = |path: &std::path::Path| -> Vec<u64> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64())
            .collect()
    };
    let mut log = MetricsLog::open(&path, &serde_json::json!({}), None).unwrap();
    for step in 1..=5 {
        log.log(step, 0.0, &[("loss".to_string(), 1.0)].into())
            .unwrap();
    }
    drop(log);
    // Resumed from checkpoint 3: steps 4 and 5 are trained again, and logged once.
    let mut log = MetricsLog::open(&path, &serde_json::json!({}), Some(3)).unwrap();
    log.log(4, 0.0, &[("loss".to_string(), 2.0)].into())
        .unwrap();
    drop(log);
    assert_eq!(steps(&path), vec![1, 2, 3, 4]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"resumed_from_step\":3"), "{text}");
    // A fresh run (overwrite_output_dir) starts the log over.
    drop(MetricsLog::open(&path, &serde_json::json!({}), None).unwrap());
    assert_eq!(steps(&path), Vec::<u64>::new());
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
}
