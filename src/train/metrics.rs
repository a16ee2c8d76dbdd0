//! Metrics as JSON lines (`metrics.jsonl`): the resolved config first, then one object per logged
//! step with TRL's metric names (`loss`, `rewards/chosen`, ...), so curves overlay with TRL runs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::{Error, Result};

/// Named scalar metrics of one step.
pub type Metrics = BTreeMap<String, f64>;

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

impl MetricsLog {
    /// Opens (appending) `path`. A new file starts with `{"config": ...}`; a resumed run appends
    /// `{"resumed_from_step": N, "config": ...}` so the log tells the whole story.
    pub fn open(path: &Path, config: &Value, resumed_from: Option<u64>) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening metrics log {}", path.display()), e))?;
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
