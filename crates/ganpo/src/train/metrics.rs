//! Metrics as JSON lines (`metrics.jsonl`): the resolved config first, then one object per logged
//! step with TRL's metric names (`loss`, `rewards/chosen`, ...), so curves overlay with TRL runs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use serde_json::{Value, json};

use crate::{Error, Result};

/// Named scalar metrics of one step.
pub type Metrics = BTreeMap<String, f64>;

/// A scalar tensor's value as f64.
pub(crate) fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// The mean of a tensor's elements as f64.
pub(crate) fn mean(t: &Tensor) -> Result<f64> {
    scalar(&t.to_dtype(DType::F64)?.mean_all()?)
}

/// The fraction of positions where `higher` is above `lower`.
pub(crate) fn ordering_accuracy(higher: &Tensor, lower: &Tensor) -> Result<f64> {
    mean(&higher.gt(lower)?.to_dtype(DType::F32)?)
}

/// Accumulates metrics over micro-batches and averages them (as TRL averages over a logging window).
#[derive(Debug, Default, Clone)]
pub struct MetricsAverager {
    sums: Metrics,
    counts: BTreeMap<String, u64>,
}

impl MetricsAverager {
    /// Adds one observation of each metric.
    pub fn add(&mut self, metrics: &Metrics) {
        for (k, v) in metrics {
            *self.sums.entry(k.clone()).or_default() += v;
            *self.counts.entry(k.clone()).or_default() += 1;
        }
    }

    /// The means so far, and resets.
    pub fn take(&mut self) -> Metrics {
        let out = self
            .sums
            .iter()
            .map(|(k, s)| (k.clone(), s / self.counts[k] as f64))
            .collect();
        self.sums.clear();
        self.counts.clear();
        out
    }

    /// Whether nothing has been added since the last `take`.
    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }
}

/// An append-only JSON-lines metrics file.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

/// Rewrites the log at `path` (if any) without the lines logged after step `step`, through a
/// temporary file renamed into place so that a crash leaves the old or the new log.
fn truncate_after(path: &Path, step: u64) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let kept: String = text
        .lines()
        .filter(|line| {
            let logged = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v.get("step").and_then(Value::as_u64));
            logged.is_none_or(|s| s <= step)
        })
        .flat_map(|line| [line, "\n"])
        .collect();
    if kept.len() == text.len() {
        return Ok(());
    }
    let tmp = path.with_extension("jsonl.tmp");
    std::fs::write(&tmp, kept)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io(format!("truncating {} to step {step}", path.display()), e))
}

impl MetricsLog {
    /// Opens `path`. A new run starts the file afresh with `{"config": ...}` (a run allowed to
    /// overwrite its output directory replaces the old log). A run resumed from step N keeps the
    /// lines up to step N, drops those the interrupted run logged after it (they are trained
    /// again), and appends `{"resumed_from_step": N, "config": ...}` so the log tells the story.
    pub fn open(path: &Path, config: &Value, resumed_from: Option<u64>) -> Result<Self> {
        let io = |e| Error::io(format!("opening metrics log {}", path.display()), e);
        if let Some(step) = resumed_from {
            truncate_after(path, step)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(resumed_from.is_some())
            .truncate(resumed_from.is_none())
            .open(path)
            .map_err(io)?;
        let mut log = MetricsLog {
            path: path.to_owned(),
            file,
        };
        let header = match resumed_from {
            None => json!({ "config": config }),
            Some(step) => json!({ "resumed_from_step": step, "config": config }),
        };
        log.write_value(&header)?;
        Ok(log)
    }

    fn write_value(&mut self, value: &Value) -> Result<()> {
        let mut line = serde_json::to_string(value).expect("JSON values serialize");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|e| Error::io(format!("writing metrics log {}", self.path.display()), e))
    }

    /// Appends `{"step": step, "epoch": epoch, ...metrics}`. Non-finite values are written as
    /// strings (`"NaN"`, `"inf"`) since JSON has no such numbers.
    pub fn log(&mut self, step: u64, epoch: f64, metrics: &Metrics) -> Result<()> {
        let mut obj = serde_json::Map::new();
        obj.insert("step".into(), json!(step));
        obj.insert("epoch".into(), json!(epoch));
        for (k, v) in metrics {
            let value = if v.is_finite() {
                json!(v)
            } else {
                json!(v.to_string())
            };
            obj.insert(k.clone(), value);
        }
        self.write_value(&Value::Object(obj))
    }
}
