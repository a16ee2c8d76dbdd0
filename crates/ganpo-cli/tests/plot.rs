//! `ganpo plot` and the `plot` module: charts of a synthetic run are real PNGs of the right size
//! with something drawn on them, groups without data are skipped, and bad inputs give errors that
//! name the file (and line).

mod png_check;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use ganpo::eval::{EvalReport, EvalSettings, JudgeSummary, TemperatureRow};
use ganpo::train::metrics::{Metrics, MetricsLog};
use ganpo_cli::plot::{LineChart, Series, plot_run};
use png_check::{assert_is_a_drawn_plot, summarize};
use serde_json::json;

/// A run of 40 steps logged every 2, with held-out metrics every 10 steps, GANPO diagnostics when
/// `ganpo`, a resume from step 20, and one non-finite gradient norm.
fn write_run(dir: &Path, ganpo: bool) {
    let path = dir.join("metrics.jsonl");
    let config = json!({ "training": { "output_dir": dir } });
    let mut log = MetricsLog::open(&path, &config, None).unwrap();
    let log_steps = |log: &mut MetricsLog, steps: std::ops::RangeInclusive<u64>| {
        for step in steps.filter(|s| s % 2 == 0) {
            let t = step as f64;
            let mut m = Metrics::new();
            m.insert("loss".into(), 0.69 * (-t / 30.0).exp());
            m.insert("rewards/chosen".into(), 0.02 * t);
            m.insert("rewards/rejected".into(), -0.03 * t);
            m.insert("rewards/margins".into(), 0.05 * t);
            m.insert("rewards/accuracies".into(), (0.5 + t / 80.0).min(1.0));
            m.insert("logps/chosen".into(), -40.0 + 0.1 * t);
            m.insert("logps/rejected".into(), -42.0 - 0.2 * t);
            m.insert("learning_rate".into(), 1e-5 * (1.0 - t / 40.0));
            let norm = if step == 14 {
                f64::NAN
            } else {
                1.0 + (t / 3.0).sin()
            };
            m.insert("grad_norm".into(), norm);
            if ganpo {
                m.insert("disc/loss_chosen".into(), 0.69 - 0.004 * t);
                m.insert("disc/loss_rejected".into(), 0.69 - 0.003 * t);
                m.insert("adv/loss".into(), 0.69 + 0.002 * t);
                m.insert("disc/acc_chosen_ref_over_policy".into(), 0.5 + t / 100.0);
                m.insert("disc/acc_rejected_ref_over_policy".into(), 0.5 + t / 120.0);
                m.insert("disc/mean_plus_policy".into(), -0.1 * t.sqrt());
            }
            log.log(step, t / 40.0, &m).unwrap();
            if step % 10 == 0 {
                let mut e = Metrics::new();
                e.insert("eval_loss".into(), 0.7 * (-t / 40.0).exp());
                e.insert("eval_rewards/margins".into(), 0.04 * t);
                e.insert("eval_rewards/accuracies".into(), 0.5 + t / 100.0);
                log.log(step, t / 40.0, &e).unwrap();
            }
        }
    };
    log_steps(&mut log, 1..=24);
    drop(log);
    // Resumed from the step-20 checkpoint: steps 22 and 24 are trained (and logged) again.
    let mut log = MetricsLog::open(&path, &config, Some(20)).unwrap();
    log_steps(&mut log, 21..=40);
}

fn eval_report() -> EvalReport {
    let row = |temperature: f64, score: f64| TemperatureRow {
        temperature,
        samples: 24,
        sequence_kl: 0.5 + temperature,
        sequence_kl_stderr: 0.1,
        token_kl: 0.02 + temperature / 10.0,
        tokens: 400,
        length_mean: 12.0 + 6.0 * temperature,
        length_std: 2.0,
        judge: Some(JudgeSummary {
            score_mean: score,
            components: Default::default(),
            structure_valid_rate: Some(score + 0.05),
            reference_score_mean: score - 0.1,
            win_rate: 0.6,
            wins: 12,
            ties: 4,
            losses: 8,
        }),
    };
    EvalReport {
        date: "2026-11-28T00:00:00Z".into(),
        policy: "runs/x/final".into(),
        reference: "sft".into(),
        judge: Some("structured".into()),
        settings: EvalSettings::default(),
        prompts: 24,
        pairs: 0,
        preference: None,
        latent: None,
        // Out of order on purpose: the sweep is drawn sorted by temperature.
        temperatures: vec![row(0.0, 0.8), row(1.5, 0.4), row(0.7, 0.7), row(1.0, 0.6)],
    }
}

fn names(paths: &[std::path::PathBuf]) -> BTreeSet<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_ganpo_run_with_an_eval_report_gets_every_chart() {
    let tmp = tempfile::tempdir().unwrap();
    write_run(tmp.path(), true);
    std::fs::write(
        tmp.path().join("eval.json"),
        serde_json::to_string_pretty(&eval_report()).unwrap(),
    )
    .unwrap();
    let out = tmp.path().join("plots");
    let written = plot_run(tmp.path(), &out, None).unwrap();
    let expected = [
        "loss.png",
        "rewards_margins.png",
        "rewards_accuracies.png",
        "rewards.png",
        "logps.png",
        "ganpo_losses.png",
        "ganpo_disc_accuracies.png",
        "ganpo_disc_means.png",
        "learning_rate.png",
        "grad_norm.png",
        "eval_score.png",
        "eval_structure_valid.png",
        "eval_win_rate.png",
        "eval_length.png",
        "eval_kl.png",
    ];
    assert_eq!(
        names(&written),
        expected.iter().map(|s| s.to_string()).collect()
    );
    for path in &written {
        assert!(path.starts_with(&out));
        assert_is_a_drawn_plot(path);
    }
}

#[test]
fn a_plain_dpo_run_has_no_ganpo_or_sweep_charts() {
    let tmp = tempfile::tempdir().unwrap();
    write_run(tmp.path(), false);
    let written = plot_run(tmp.path(), &tmp.path().join("plots"), None).unwrap();
    let names = names(&written);
    assert!(names.contains("loss.png") && names.contains("rewards_margins.png"));
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("ganpo_") && !n.starts_with("eval_")),
        "{names:?}"
    );
}

#[test]
fn each_series_is_drawn_in_its_own_color() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("chart.png");
    let nan = f64::NAN;
    LineChart::new("two lines", "x", "y")
        .with_series(Series::new(
            "a",
            vec![(0.0, 0.0), (1.0, 1.0), (2.0, nan), (3.0, 2.0)],
        ))
        .with_series(Series::new("b", vec![(0.0, 2.0), (3.0, 0.0)]))
        .with_series(Series::new("only gaps", vec![(0.0, nan)]))
        .write_png(&path)
        .unwrap();
    assert_is_a_drawn_plot(&path);
    let palette = summarize(&path).palette;
    // tab10's first two colors, exactly as drawn by the lines' solid pixels.
    assert!(palette.contains(&[31, 119, 180]) && palette.contains(&[255, 127, 14]));
    assert!(
        !palette.contains(&[44, 160, 44]),
        "a series with no points took a color"
    );
}

#[test]
fn a_malformed_line_is_named_by_file_and_line_number() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "{\"config\": {}}\n{\"step\": 1, \"loss\": 0.6}\n{\"step\": 2, \"loss\": 0.5\n";
    std::fs::write(tmp.path().join("metrics.jsonl"), text).unwrap();
    let err = plot_run(tmp.path(), &tmp.path().join("plots"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("metrics.jsonl:3:"), "{err}");
}

#[test]
fn a_directory_without_metrics_says_to_train_first() {
    let tmp = tempfile::tempdir().unwrap();
    let err = plot_run(tmp.path(), &tmp.path().join("plots"), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("metrics.jsonl") && err.contains("ganpo train"),
        "{err}"
    );
    assert!(
        !tmp.path().join("plots").exists(),
        "nothing is created on failure"
    );
    let missing = tmp.path().join("no-such-run");
    let err = plot_run(&missing, &tmp.path().join("plots"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-run"), "{err}");
}

#[test]
fn a_bad_eval_report_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    write_run(tmp.path(), false);
    let report = tmp.path().join("report.json");
    std::fs::write(&report, "{\"date\": 1}").unwrap();
    let err = plot_run(tmp.path(), &tmp.path().join("plots"), Some(&report))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("report.json") && err.contains("ganpo eval"),
        "{err}"
    );
}

fn ganpo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ganpo"))
        .args(args)
        .output()
        .expect("ganpo runs")
}

#[test]
fn the_cli_plots_a_run_and_prints_the_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    write_run(&run, true);
    let report = tmp.path().join("elsewhere.json");
    std::fs::write(&report, serde_json::to_string(&eval_report()).unwrap()).unwrap();
    let out = tmp.path().join("figures");
    let o = ganpo(&[
        "plot",
        run.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--eval",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(printed.len(), 15, "{printed:?}");
    for line in &printed {
        assert_is_a_drawn_plot(Path::new(line));
    }
    assert!(printed.contains(&out.join("eval_score.png").display().to_string()));

    // Default output: RUN_DIR/plots.
    let o = ganpo(&["plot", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(run.join("plots/loss.png").exists());
}

#[test]
fn the_cli_fails_clearly_without_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let o = ganpo(&["plot", tmp.path().to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("metrics.jsonl") && err.contains("ganpo train"),
        "{err}"
    );

    // A log with only its config header: nothing logged yet.
    std::fs::write(tmp.path().join("metrics.jsonl"), "{\"config\": {}}\n").unwrap();
    let o = ganpo(&["plot", tmp.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to plot"));
}
