//! `ganpo demo --quick` end to end, as CI's smoke test of the main job: it finishes, writes the
//! report, and the report's numbers are the ones in results.json; its figures are drawn PNGs
//! that the report embeds.

mod png_check;

use std::process::Command;

#[test]
fn quick_demo_runs_and_reports_what_it_measured() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    // A relative --output, as the default is: the arms' configs name paths relative to it.
    let run = Command::new(env!("CARGO_BIN_EXE_ganpo"))
        .current_dir(tmp.path())
        .args(["demo", "--quick", "--output", "demo"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let arms = results["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 4);
    for arm in arms {
        let name = arm["arm"].as_str().unwrap();
        let greedy = &arm["temperatures"][0];
        let line = report
            .lines()
            .find(|l| l.starts_with(&format!("| {name} | 0 |")))
            .unwrap();
        assert!(
            line.contains(&format!("{:.3}", greedy["score"].as_f64().unwrap())),
            "{line}"
        );
        let run_dir = out
            .join("arms")
            .join(format!("{}-seed0", name.replace('+', "_")))
            .join("run");
        assert!(run_dir.join("final/model.safetensors").exists());
        // The held-out accuracy reported is the last one the arm's own metrics file logged.
        let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
        let logged = metrics
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v["eval_rewards/accuracies"].as_f64())
            .expect("an eval line in metrics.jsonl");
        assert_eq!(
            arm["eval"]["eval_rewards/accuracies"].as_f64(),
            Some(logged),
            "{name}"
        );
    }
    assert!(String::from_utf8_lossy(&run.stdout).contains("| dpo+ganpo |"));
    verdicts_recompute_from_per_prompt_scores(&out, &results, &report);
    assert!(out.join("sft/tokenizer.json").exists() && out.join("data/train.jsonl").exists());
    for figure in [
        "score_vs_temperature.png",
        "structure_valid_vs_temperature.png",
        "length_vs_temperature.png",
        "training_loss.png",
        "training_margins.png",
    ] {
        png_check::assert_is_a_drawn_plot(&out.join(figure));
        assert!(
            report.contains(&format!("]({figure})")),
            "report.md embeds {figure}"
        );
    }
}

/// Every verdict line is in report.md, and its estimate recomputes from `per_prompt.json`: here
/// each head-to-head win rate (1 win, ½ tie, 0 loss per prompt, mean over prompts and seeds).
fn verdicts_recompute_from_per_prompt_scores(
    out: &std::path::Path,
    results: &serde_json::Value,
    report: &str,
) {
    let per: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("per_prompt.json")).unwrap())
            .unwrap();
    let prompts = per["prompts"].as_array().unwrap().len();
    let temps: Vec<f64> = per["temperatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    let scores = |arm: &str, t: usize| -> Vec<f64> {
        let lists = if arm == "sft" {
            &per["sft"]
        } else {
            &per["arms"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["arm"] == arm && a["seed"] == 0)
                .unwrap()["per_prompt"]
        };
        let s: Vec<f64> = lists[t]["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(s.len(), prompts);
        s
    };
    let claims = results["claims"].as_array().unwrap();
    let mut checked = 0;
    for c in claims {
        let comparison = c["comparison"].as_str().unwrap();
        assert!(report.contains(comparison), "report.md lacks {comparison}");
        let Some((pair, temp)) = comparison.split_once(", win rate at T = ") else {
            continue;
        };
        let (a, b) = pair.split_once(" vs ").unwrap();
        let t = temps
            .iter()
            .position(|x| (x - temp.parse::<f64>().unwrap()).abs() < 1e-9)
            .unwrap();
        let b = if b == "SFT" { "sft" } else { b };
        let (sa, sb) = (scores(a, t), scores(b, t));
        let wins: f64 = sa
            .iter()
            .zip(&sb)
            .map(|(x, y)| {
                if (x - y).abs() <= 1e-9 {
                    0.5
                } else if x > y {
                    1.0
                } else {
                    0.0
                }
            })
            .sum();
        let estimate = c["interval"]["estimate"].as_f64().unwrap();
        assert!(
            (wins / prompts as f64 - estimate).abs() < 1e-12,
            "{comparison}"
        );
        let (low, high) = (
            c["interval"]["low"].as_f64().unwrap(),
            c["interval"]["high"].as_f64().unwrap(),
        );
        assert!(low <= estimate && estimate <= high, "{comparison}");
        checked += 1;
    }
    assert!(checked >= 4, "{checked} win-rate lines checked");
}
