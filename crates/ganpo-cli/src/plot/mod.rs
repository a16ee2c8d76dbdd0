//! PNG plots of a training run (`ganpo plot RUN_DIR`) and of the demo's report: a small line-chart
//! writer ([`LineChart`]), a reader of `metrics.jsonl` ([`MetricsHistory`]), the training-curve
//! groups and an evaluation report's temperature sweep. Text is drawn with an embedded font, so
//! plotting needs no system fonts.

pub mod chart;
pub mod curves;
pub mod font;
pub mod history;
pub mod sweep;

use std::path::{Path, PathBuf};

use ganpo::{Error, Result};

pub use chart::{HEIGHT, LineChart, Series, WIDTH};
pub use curves::plot_training_curves;
pub use history::{LoggedStep, MetricsHistory};
pub use sweep::{plot_eval_report, read_eval_report};

/// The evaluation report `plot_run` picks up from a run directory when none is named: where the
/// README's example has `ganpo eval --output` write it.
pub const EVAL_REPORT_FILE: &str = "eval.json";

/// Plots the run in `run_dir` into `out_dir` (created if needed): the training curves of
/// `run_dir/metrics.jsonl`, and the temperature sweep of `eval_report` (or of
/// `run_dir/eval.json` when that exists). Returns the PNGs written; empty when the log holds no
/// logged step yet.
pub fn plot_run(
    run_dir: &Path,
    out_dir: &Path,
    eval_report: Option<&Path>,
) -> Result<Vec<PathBuf>> {
    if !run_dir.is_dir() {
        return Err(Error::io(
            format!(
                "run directory {} (give the output_dir of a `ganpo train` run)",
                run_dir.display()
            ),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let history = MetricsHistory::read(&run_dir.join("metrics.jsonl"))?;
    let default_report = run_dir.join(EVAL_REPORT_FILE);
    let report = match eval_report {
        Some(path) => Some(read_eval_report(path)?),
        None if default_report.is_file() => Some(read_eval_report(&default_report)?),
        None => None,
    };
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Error::io(format!("creating {}", out_dir.display()), e))?;
    let mut written = plot_training_curves(&history, out_dir)?;
    if let Some(report) = &report {
        written.extend(plot_eval_report(report, out_dir)?);
    }
    Ok(written)
}
