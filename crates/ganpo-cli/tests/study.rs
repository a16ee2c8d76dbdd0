//! `ganpo study sentiment`: VADER (the study's reward) against the Python reference package on
//! real corpus sentences, and the whole pipeline end to end on the tiny fixture model and a
//! 50-line excerpt of the Brown corpus — including a rerun that skips every finished phase.

use std::path::Path;
use std::process::Command;

use ganpo_cli::judge::{Judge, SentimentJudge};
use ganpo_cli::study::config::StudyConfig;
use ganpo_cli::study::evaluate::TemperatureSamples;
use ganpo_cli::study::verdicts::{SampleTable, verdicts};

/// The repository's `tests/fixtures/` (shared by both crates).
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");

/// The crate's compound against vaderSentiment 3.3.2's on 250 Brown sentences
/// (`tools/golden/vader_brown.py`). Measured (docs/study.md): 40 of 250 differ by more than
/// 0.001, 8 by more than 0.1, the largest by 0.60, one has the opposite sign, the mean absolute
/// difference is 0.0145; the bounds below lock that in, so a change of either side shows up.
#[test]
fn vader_crate_matches_python_on_brown_sentences() {
    let text =
        std::fs::read_to_string(Path::new(FIXTURES).join("study/vader_brown.jsonl")).unwrap();
    let judge = SentimentJudge::default();
    let (mut n, mut differ, mut large, mut sign_flips) = (0, 0, 0, 0);
    let (mut max_diff, mut sum_diff) = (0.0f64, 0.0);
    for line in text.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let sentence = row["text"].as_str().unwrap();
        let python = row["compound"].as_f64().unwrap();
        let rust = judge.score("", sentence).components["compound"];
        let d = (rust - python).abs();
        n += 1;
        differ += usize::from(d > 1e-3);
        large += usize::from(d > 0.1);
        if d > 1e-3 {
            eprintln!("{d:.4}  rust {rust:+.4}  python {python:+.4}  {sentence}");
        }
        sign_flips += usize::from(rust * python < 0.0);
        max_diff = max_diff.max(d);
        sum_diff += d;
    }
    let mean_diff = sum_diff / n as f64;
    eprintln!(
        "{differ} of {n} differ by more than 0.001, {large} by more than 0.1; largest {max_diff:.4}, mean {mean_diff:.4}; {sign_flips} sign flips"
    );
    assert!(n >= 200, "{n} sentences");
    assert!(
        differ * 5 <= n,
        "{differ} of {n} sentences differ by more than 0.001"
    );
    assert!(large <= 12, "{large} sentences differ by more than 0.1");
    assert!(mean_diff < 0.02, "mean absolute difference {mean_diff}");
    assert!(sign_flips <= 1, "{sign_flips} sentences get opposite signs");
}

fn tiny_model(dir: &Path) {
    // The llama fixture with room for a 12-word prompt in characters plus the samples (RoPE has
    // no learned positions, so only the limit changes).
    std::fs::create_dir_all(dir).unwrap();
    let src = Path::new(FIXTURES).join("models/llama");
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let config = dir.join("config.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    value["max_position_embeddings"] = 512.into();
    std::fs::write(&config, value.to_string()).unwrap();
}

fn study(model: &Path, corpus: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ganpo"))
        .args(["study", "sentiment", "--quick", "--model"])
        .arg(model)
        .arg("--corpus")
        .arg(corpus)
        .arg("--output")
        .arg(out)
        .args([
            "--train-prompts",
            "6",
            "--validation-prompts",
            "3",
            "--eval-prompts",
            "4",
            "--max-prompt-tokens",
            "120",
            "--max-new-tokens",
            "8",
            "--min-gap",
            "0",
            "--batch-size",
            "8",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn quick_study_runs_end_to_end_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    tiny_model(&model);
    let corpus = Path::new(FIXTURES).join("study/brown");
    let out = tmp.path().join("study");
    let run = study(&model, &corpus, &out, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    // Reference + 5 arms (DPO, DPO+GANPO λ=1, DPO+GANPO λ=0.3, SimPO, SimPO+GANPO) × 2 temperatures.
    let rows = results["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 12, "{rows:?}");
    // Every table row's reward is the mean of the saved samples.
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("arms/dpo-b0.1/seed0/eval/T1.json")).unwrap(),
    )
    .unwrap();
    let rewards: Vec<f64> = saved["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reward"].as_f64().unwrap())
        .collect();
    let mean = rewards.iter().sum::<f64>() / rewards.len() as f64;
    let row = rows
        .iter()
        .find(|r| r["model"] == "dpo-b0.1" && r["temperature"] == 1.0)
        .unwrap();
    assert!((row["reward"]["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!(
        report.contains(&format!("| dpo-b0.1 | {:.3} ± ", mean)),
        "{report}"
    );
    assert!(!results["verdicts"].as_array().unwrap().is_empty());
    // per_prompt.json holds the same values (every model, seed and temperature, prompt order).
    let per_prompt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("per_prompt.json")).unwrap())
            .unwrap();
    let at_t1 = &per_prompt["models"]["dpo-b0.1"][0][0];
    assert_eq!(at_t1["temperature"], 1.0);
    let listed: Vec<f64> = at_t1["reward"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(listed, rewards);
    assert_eq!(
        per_prompt["prompts"].as_array().unwrap().len(),
        rewards.len()
    );
    assert_eq!(per_prompt["models"].as_object().unwrap().len(), 6);
    for figure in [
        "frontier_T1.png",
        "reward_vs_T.png",
        "ref_nll_vs_T.png",
        "length_vs_T.png",
        "training_loss.png",
    ] {
        assert!(out.join("figures").join(figure).is_file(), "{figure}");
        assert!(report.contains(&format!("(figures/{figure})")), "{figure}");
    }
    verdicts_recompute_from_saved_samples(&out, &results);
    // Finished arms keep neither checkpoints nor (without --keep-models) their final model.
    assert!(!out.join("arms/dpo-b0.1/seed0/run/final").exists());
    // A rerun skips the pairs and every arm, and writes the same results.
    let again = study(&model, &corpus, &out, &[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("pairs: cached"), "{stderr}");
    assert_eq!(stderr.matches(": cached").count(), 6, "{stderr}");
    assert!(!stderr.contains("trained"), "{stderr}");
    let results_again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["rows"], results_again["rows"]);
    // More seeds extend the study: seed 0 is reused, only seed 1's arms are trained.
    let seeds = study(&model, &corpus, &out, &["--seeds", "2"]);
    let stderr = String::from_utf8_lossy(&seeds.stderr);
    assert!(seeds.status.success(), "{stderr}");
    assert_eq!(stderr.matches("seed 0: cached").count(), 5, "{stderr}");
    assert_eq!(stderr.matches("seed 1: trained").count(), 5, "{stderr}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let dpo = results["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model"] == "dpo-b0.1" && r["temperature"] == 1.0)
        .unwrap();
    assert_eq!(dpo["reward"]["n"], 8, "two seeds × 4 prompts: {dpo}");
    // Other settings are refused, naming the setting.
    let other = study(&model, &corpus, &out, &["--epochs", "2"]);
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("`epochs` is 2 now, 1 before"));
}

/// The verdicts of results.json, recomputed from the per-sample files alone.
fn verdicts_recompute_from_saved_samples(out: &Path, results: &serde_json::Value) {
    let temperatures = [1.0, 2.0];
    let load = |dir: &Path| -> Vec<TemperatureSamples> {
        temperatures
            .iter()
            .map(|t| {
                let text = std::fs::read_to_string(dir.join(format!("T{t}.json"))).unwrap();
                serde_json::from_str(&text).unwrap()
            })
            .collect()
    };
    let arms = StudyConfig::new(out.into(), "m".into(), "c".into(), true, 1).arms();
    let mut table = SampleTable::new();
    table.insert("reference".into(), vec![load(&out.join("eval/reference"))]);
    for arm in &arms {
        let dir = out
            .join("arms")
            .join(arm.name.replace('+', "_"))
            .join("seed0/eval");
        table.insert(arm.name.clone(), vec![load(&dir)]);
    }
    let lines = verdicts(&table, &arms, &temperatures).unwrap();
    let saved = results["verdicts"].as_array().unwrap();
    assert_eq!(lines.len(), saved.len());
    for (line, saved) in lines.iter().zip(saved) {
        assert_eq!(saved["arm"], line.arm.as_str());
        assert_eq!(saved["claim"], line.claim.as_str());
        for (key, value) in [
            ("estimate", line.interval.estimate),
            ("low", line.interval.low),
            ("high", line.interval.high),
        ] {
            assert_eq!(
                saved["interval"][key].as_f64(),
                Some(value),
                "{key} of {saved}"
            );
        }
        assert_eq!(
            saved["verdict"],
            serde_json::to_value(line.verdict).unwrap()
        );
    }
}

#[test]
fn missing_inputs_name_the_scripts_that_fetch_them() {
    let tmp = tempfile::tempdir().unwrap();
    let run = study(
        &tmp.path().join("no-model.gguf"),
        &Path::new(FIXTURES).join("study/brown"),
        &tmp.path().join("a"),
        &[],
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("scripts/fetch-smollm2.sh"));
    let model = tmp.path().join("model");
    tiny_model(&model);
    let run = study(
        &model,
        &tmp.path().join("no-corpus"),
        &tmp.path().join("b"),
        &[],
    );
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("scripts/fetch-brown.sh"));
}
