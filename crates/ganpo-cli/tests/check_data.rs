//! `ganpo check-data`: every problem of a dataset reported with its location in one pass, length
//! statistics and the chosen-longer fraction; non-zero exit on errors, zero with warnings only.

mod common;

use std::process::Command;

use common::fixture;

fn check(lines: &[&str], extra: &[&str]) -> (bool, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d.jsonl");
    std::fs::write(&data, lines.join("\n")).unwrap();
    let model = fixture("models/llama");
    let out = Command::new(env!("CARGO_BIN_EXE_ganpo"))
        .args([
            "check-data",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &str = r#"{"prompt": "w1 w2", "chosen": " w3 w4 w5", "rejected": " w6"}"#;

#[test]
fn warnings_only_exit_zero_and_every_kind_is_located() {
    let lines = [
        GOOD,
        r#"{"chosen": "w1 w2 w3", "rejected": "w1 w2 w4"}"#,
        GOOD,
        r#"{"prompt": "w1", "chosen": "  ", "rejected": " w4"}"#,
        r#"{"prompt": "w1", "chosen": " w3", "rejected": " w3"}"#,
    ];
    let (ok, stdout, stderr) = check(&lines, &["--json"]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["records"], 5);
    assert_eq!(report["kept"], 5);
    let kinds: Vec<(String, String)> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let at = w["location"].as_str().unwrap();
            let line = at.rsplit(':').next().unwrap().to_string();
            (w["kind"].as_str().unwrap().to_string(), line)
        })
        .collect();
    for expected in [
        ("implicit_prompt", "2"),
        ("duplicate", "3"),
        ("blank_completion", "4"),
        ("identical_completions", "5"),
    ] {
        assert!(
            kinds.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {kinds:?}"
        );
    }
    // Completions with EOS: chosen 4 tokens in two records of five, rejected 2.
    assert_eq!(report["chosen_tokens"]["max"], 4);
    let longer = report["chosen_longer"].as_f64().unwrap();
    assert!((longer - 0.4).abs() < 1e-12, "{longer}");
}

#[test]
fn errors_and_records_too_long_exit_non_zero_naming_each_line() {
    let long: Vec<String> = (0..80).map(|i| format!("w{}", i % 90)).collect();
    let long = format!(
        r#"{{"prompt": "w1", "chosen": " {}", "rejected": " w2"}}"#,
        long.join(" ")
    );
    let lines = [
        GOOD,
        r#"{"prompt": "w1", "chosen": [{"role": "user", "content": "x"}], "rejected": " w4"}"#,
        &long,
    ];
    let (ok, stdout, stderr) = check(&lines, &[]);
    assert!(!ok);
    assert!(
        stdout.contains("d.jsonl:2: field `chosen`") && !stdout.contains("d.jsonl:2: d.jsonl:2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("d.jsonl:3: prompt + chosen is") && stdout.contains("(64)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("2 records cannot be trained on"),
        "{stderr}"
    );
}
