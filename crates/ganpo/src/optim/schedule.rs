//! Learning-rate schedules with warmup, as transformers' `get_scheduler`: the multiplier for
//! optimizer step k (0-based, before the step) is
//!
//! * warmup (k < w): `k / w`
//! * `constant`: 1
//! * `linear`: `max(0, (N − k) / (N − w))`
//! * `cosine`: `max(0, ½ (1 + cos(π · (k − w) / (N − w))))`
//!
//! with N the total number of optimizer steps and w the warmup steps (`warmup_steps`, or
//! `ceil(warmup_ratio · N)`).

use serde::{Deserialize, Serialize};

/// The decay shape after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Constant after warmup (`constant_with_warmup`; `constant` when warmup is 0).
    Constant,
    /// Linear decay to 0 at the last step.
    Linear,
    /// Half-cosine decay to 0 at the last step.
    Cosine,
}

/// A resolved schedule: peak learning rate, kind, warmup and total steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Decay shape.
    pub kind: ScheduleKind,
    /// Warmup steps w.
    pub warmup_steps: u64,
    /// Total optimizer steps N.
    pub total_steps: u64,
}

impl Schedule {
    /// Warmup steps from a ratio of the total, as transformers (`ceil(ratio · N)`).
    pub fn warmup_from_ratio(ratio: f64, total_steps: u64) -> u64 {
        (ratio * total_steps as f64).ceil() as u64
    }

    /// The multiplier of the peak rate at 0-based optimizer step `k`.
    pub fn factor(&self, k: u64) -> f64 {
        let (k, w, n) = (k as f64, self.warmup_steps as f64, self.total_steps as f64);
        if k < w {
            return k / w.max(1.0);
        }
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => ((n - k) / (n - w).max(1.0)).max(0.0),
            ScheduleKind::Cosine => {
                let progress = (k - w) / (n - w).max(1.0);
                (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
            }
        }
    }

    /// The learning rate at 0-based optimizer step `k`.
    pub fn lr(&self, k: u64) -> f64 {
        self.learning_rate * self.factor(k)
    }
}
