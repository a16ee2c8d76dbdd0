//! The temperature sweep of an evaluation report (`ganpo eval --output FILE`): judge score,
//! structure validity, win rate, response length and KL against the sampling temperature.

use std::path::{Path, PathBuf};

use ganpo::eval::EvalReport;
use ganpo::eval::sampled::TemperatureRow;
use ganpo::{Error, Result};

use super::chart::{LineChart, Series};

/// Reads an evaluation report written by `ganpo eval --output FILE`.
pub fn read_eval_report(path: &Path) -> Result<EvalReport> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::io(
            format!(
                "reading eval report {} (write one with `ganpo eval ... --output FILE`)",
                path.display()
            ),
            e,
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::data(
            path.display().to_string(),
            format!("not a `ganpo eval` JSON report: {e}"),
        )
    })
}

/// Rows sorted by temperature, so lines run left to right whatever order they were given in.
fn sorted_rows(report: &EvalReport) -> Vec<&TemperatureRow> {
    let mut rows: Vec<&TemperatureRow> = report.temperatures.iter().collect();
    rows.sort_by(|a, b| a.temperature.total_cmp(&b.temperature));
    rows
}

fn series(
    name: &str,
    rows: &[&TemperatureRow],
    value: impl Fn(&TemperatureRow) -> Option<f64>,
) -> Series {
    Series::from_options(name, rows.iter().map(|r| (r.temperature, value(r))))
}

/// The sweep's charts, with their file names; charts without data are left out.
fn sweep_charts(report: &EvalReport) -> Vec<(&'static str, LineChart)> {
    let rows = sorted_rows(report);
    let judge = report.judge.as_deref().unwrap_or("judge");
    let t = "sampling temperature";
    let charts =
        [
            (
                "eval_score.png",
                LineChart::new(
                    format!("Judge score vs temperature ({judge})"),
                    t,
                    "mean score",
                )
                .with_series(series("policy", &rows, |r| {
                    r.judge.as_ref().map(|j| j.score_mean)
                }))
                .with_series(series("reference", &rows, |r| {
                    r.judge.as_ref().map(|j| j.reference_score_mean)
                })),
            ),
            (
                "eval_structure_valid.png",
                LineChart::new(
                    "Structure-valid responses vs temperature",
                    t,
                    "fraction valid",
                )
                .with_series(series("policy", &rows, |r| {
                    r.judge.as_ref().and_then(|j| j.structure_valid_rate)
                })),
            ),
            (
                "eval_win_rate.png",
                LineChart::new(
                    "Win rate against the reference vs temperature",
                    t,
                    "win rate",
                )
                .with_series(series("policy vs reference", &rows, |r| {
                    r.judge.as_ref().map(|j| j.win_rate)
                })),
            ),
            (
                "eval_length.png",
                LineChart::new("Mean response length vs temperature", t, "tokens")
                    .with_series(series("policy", &rows, |r| Some(r.length_mean))),
            ),
            (
                "eval_kl.png",
                LineChart::new("KL(policy ‖ reference) vs temperature", t, "nats")
                    .with_series(series("sequence KL (Monte Carlo)", &rows, |r| {
                        Some(r.sequence_kl)
                    }))
                    .with_series(series("per-token KL (exact)", &rows, |r| Some(r.token_kl))),
            ),
        ];
    charts.into_iter().filter(|(_, c)| c.has_data()).collect()
}

/// Writes the temperature-sweep charts of `report` into `out_dir` (which must exist):
/// `eval_score.png`, `eval_structure_valid.png`, `eval_win_rate.png` (with a judge),
/// `eval_length.png` and `eval_kl.png`.
pub fn plot_eval_report(report: &EvalReport, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (file, chart) in sweep_charts(report) {
        let path = out_dir.join(file);
        chart.write_png(&path)?;
        written.push(path);
    }
    Ok(written)
}
