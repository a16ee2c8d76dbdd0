//! The report's figures: the reward–KL frontier at each temperature (one point per arm, lines
//! joining each family's β grid — the DPO paper's figure), reward, reference NLL and length
//! against temperature, and the arms' training curves.

use std::path::{Path, PathBuf};

use ganpo::{Error, Result};

use super::config::StudyArm;
use super::summary::SummaryRow;
use crate::plot::chart::{LineChart, Series};
use crate::plot::history::MetricsHistory;

/// Writes `chart` to `dir/name` through a temporary file, so a crash leaves no partial PNG.
fn write(chart: &LineChart, dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    if !chart.has_data() {
        return Ok(None);
    }
    let path = dir.join(name);
    let tmp = dir.join(format!(".tmp-{name}"));
    chart.write_png(&tmp)?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| Error::io(format!("renaming {} into place", tmp.display()), e))?;
    Ok(Some(path))
}

/// The group of an arm in the frontier figure: arms sharing loss and λ are joined by a line.
fn group(arm: &StudyArm) -> String {
    match arm.lambda {
        None => arm.family().to_string(),
        Some(l) => format!("{}+ganpo λ={l}", arm.family()),
    }
}

fn row<'a>(rows: &'a [SummaryRow], model: &str, t: f64) -> Option<&'a SummaryRow> {
    rows.iter()
        .find(|r| r.model == model && (r.temperature - t).abs() < 1e-9)
}

/// Draws every figure into `dir` (created), returning the files written.
pub fn draw(
    rows: &[SummaryRow],
    arms: &[StudyArm],
    temperatures: &[f64],
    runs: &[(String, PathBuf)],
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mut written = Vec::new();
    let mut groups: Vec<String> = arms.iter().map(group).collect();
    groups.dedup();
    for &t in temperatures {
        let mut chart = LineChart::new(
            format!("Reward vs KL to the reference, T = {t}"),
            "sequence KL (Monte-Carlo, nats)",
            "mean VADER compound",
        );
        if let Some(r) = row(rows, "reference", t) {
            chart = chart
                .with_series(Series::new("reference", vec![(0.0, r.reward.mean)]).with_color(7));
        }
        for (i, g) in groups.iter().enumerate() {
            let mut points: Vec<(f64, f64)> = arms
                .iter()
                .filter(|a| &group(a) == g)
                .filter_map(|a| row(rows, &a.name, t))
                .map(|r| (r.sequence_kl.mean, r.reward.mean))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart = chart.with_series(Series::new(g.clone(), points).with_color(i));
        }
        written.extend(write(&chart, dir, &format!("frontier_T{t}.png"))?);
    }
    let models: Vec<String> = std::iter::once("reference".to_string())
        .chain(arms.iter().map(|a| a.name.clone()))
        .collect();
    let by_t = |title: &str, y: &str, f: fn(&SummaryRow) -> f64| {
        let mut chart = LineChart::new(title, "temperature", y);
        for (i, m) in models.iter().enumerate() {
            let points: Vec<(f64, f64)> = temperatures
                .iter()
                .filter_map(|&t| row(rows, m, t).map(|r| (t, f(r))))
                .collect();
            chart = chart.with_series(Series::new(m.clone(), points).with_color(i));
        }
        chart
    };
    for (name, chart) in [
        (
            "reward_vs_T.png",
            by_t("Mean reward vs temperature", "mean VADER compound", |r| {
                r.reward.mean
            }),
        ),
        (
            "ref_nll_vs_T.png",
            by_t(
                "Reference NLL of the samples vs temperature",
                "nats per token",
                |r| r.ref_nll.mean,
            ),
        ),
        (
            "length_vs_T.png",
            by_t("Sample length vs temperature", "tokens", |r| r.length.mean),
        ),
    ] {
        written.extend(write(&chart, dir, name)?);
    }
    for (key, name, title) in [
        ("loss", "training_loss.png", "Training loss"),
        (
            "rewards/margins",
            "training_margins.png",
            "Reward margin (chosen − rejected)",
        ),
    ] {
        let mut chart = LineChart::new(title, "step", key);
        for (i, (arm, metrics)) in runs.iter().enumerate() {
            if metrics.exists() {
                let history = MetricsHistory::read(metrics)?;
                chart =
                    chart.with_series(Series::new(arm.clone(), history.series(key)).with_color(i));
            }
        }
        written.extend(write(&chart, dir, name)?);
    }
    Ok(written)
}
