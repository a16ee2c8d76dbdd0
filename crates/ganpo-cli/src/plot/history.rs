//! Reading a run's `metrics.jsonl` back (the format [`ganpo::train::metrics::MetricsLog`]
//! writes): config headers and resume markers are bookkeeping, every other line is one logged
//! step, and each metric becomes a `(step, value)` curve.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ganpo::{Error, Result};
use serde_json::{Map, Value};

/// One logged line: its optimizer step, epoch and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedStep {
    /// Optimizer step the line was logged at.
    pub step: u64,
    /// Fractional epoch, when logged.
    pub epoch: Option<f64>,
    /// The numeric metrics on the line (`"NaN"`/`"inf"` strings read back as non-finite).
    pub metrics: BTreeMap<String, f64>,
}

/// Every logged step of a run, in the order that survives resumes.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsHistory {
    /// The file read.
    pub path: PathBuf,
    /// Logged steps, in file order.
    pub steps: Vec<LoggedStep>,
}

impl MetricsHistory {
    /// Reads `path`; a missing file says how to produce one.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::io(
                format!(
                    "reading {} (`ganpo train` writes it into its output_dir; train first, or point at that directory)",
                    path.display()
                ),
                e,
            )
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of a metrics log; `path` names it in errors (`file:line`).
    ///
    /// A resume marker `{"resumed_from_step": N, ...}` drops the steps after N logged before
    /// it: the resumed run trained those steps again, and its values are the ones that count.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut steps: Vec<LoggedStep> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = || format!("{}:{}", path.display(), index + 1);
            let object: Map<String, Value> = serde_json::from_str(line).map_err(|e| {
                Error::data(
                    at(),
                    format!("not a JSON object ({e}); every line of metrics.jsonl is one"),
                )
            })?;
            if let Some(resumed) = object.get("resumed_from_step") {
                let from = resumed.as_u64().ok_or_else(|| {
                    Error::data(at(), format!("resumed_from_step is {resumed}, not a step"))
                })?;
                steps.retain(|s| s.step <= from);
                continue;
            }
            let Some(step) = object.get("step") else {
                if object.contains_key("config") {
                    continue;
                }
                return Err(Error::data(
                    at(),
                    "neither a config header nor a logged step (no \"step\" key); is this a `ganpo train` metrics.jsonl?",
                ));
            };
            let step = step
                .as_u64()
                .ok_or_else(|| Error::data(at(), format!("step is {step}, not a step number")))?;
            let mut epoch = None;
            let mut metrics = BTreeMap::new();
            for (key, value) in object {
                // Numbers, or the strings `MetricsLog` writes for non-finite values ("NaN",
                // "inf", "-inf"); anything else is not a curve and is reported, not skipped.
                let number = match &value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.parse::<f64>().ok(),
                    _ => None,
                };
                match (key.as_str(), number) {
                    ("step", _) => {}
                    (_, Some(v)) if key == "epoch" => epoch = Some(v),
                    (_, Some(v)) => {
                        metrics.insert(key, v);
                    }
                    (_, None) => {
                        return Err(Error::data(
                            at(),
                            format!(
                                "`{key}` is {value}, not a number (metrics are numbers, or \"NaN\" / \"inf\" strings); fix or remove this line"
                            ),
                        ));
                    }
                }
            }
            steps.push(LoggedStep {
                step,
                epoch,
                metrics,
            });
        }
        Ok(MetricsHistory {
            path: path.to_owned(),
            steps,
        })
    }

    /// `(step, value)` of every logged value of `key`, in file order.
    pub fn series(&self, key: &str) -> Vec<(f64, f64)> {
        self.steps
            .iter()
            .filter_map(|s| s.metrics.get(key).map(|&v| (s.step as f64, v)))
            .collect()
    }

    /// Every metric name logged at least once.
    pub fn keys(&self) -> BTreeSet<&str> {
        self.steps
            .iter()
            .flat_map(|s| s.metrics.keys().map(String::as_str))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_skipped_and_resumes_replace_retrained_steps() {
        let text = r#"{"config": {"a": 1}}
{"step": 10, "epoch": 0.5, "loss": 0.69, "grad_norm": "NaN"}
{"step": 20, "epoch": 1.0, "loss": 0.5}
{"resumed_from_step": 10, "config": {}}
{"step": 20, "epoch": 1.0, "loss": 0.4, "eval_loss": 0.6}
"#;
        let h = MetricsHistory::parse(text, Path::new("m.jsonl")).unwrap();
        assert_eq!(h.series("loss"), vec![(10.0, 0.69), (20.0, 0.4)]);
        assert!(h.series("grad_norm")[0].1.is_nan());
        assert_eq!(h.series("eval_loss"), vec![(20.0, 0.6)]);
        assert_eq!(h.steps[0].epoch, Some(0.5));
        assert_eq!(
            h.keys().into_iter().collect::<Vec<_>>(),
            ["eval_loss", "grad_norm", "loss"]
        );
    }

    #[test]
    fn a_bad_line_is_named_by_file_and_line() {
        let text = "{\"config\": {}}\n{\"step\": 1, \"loss\": 0.5}\n{\"step\": 2, \"lo";
        let err = MetricsHistory::parse(text, Path::new("run/metrics.jsonl")).unwrap_err();
        assert!(
            err.to_string().starts_with("run/metrics.jsonl:3: "),
            "{err}"
        );
        let err = MetricsHistory::parse("{\"prompt\": \"hi\"}", Path::new("d.jsonl")).unwrap_err();
        assert!(err.to_string().contains("d.jsonl:1"), "{err}");
        let text = "{\"step\": 1, \"loss\": 0.5}\n{\"step\": 2, \"loss\": \"fast\"}\n";
        let err = MetricsHistory::parse(text, Path::new("m.jsonl")).unwrap_err();
        assert!(
            err.to_string().contains("m.jsonl:2") && err.to_string().contains("`loss`"),
            "{err}"
        );
    }
}
