//! What `ganpo bench` measured, as JSON (the field names `tools/bench/torch_step.py` writes too)
//! and as a table.

use std::collections::BTreeMap;
use std::fmt::Write;

use ganpo::train::phases::{Phase, PhaseTimes};
use serde::{Deserialize, Serialize};

use super::matmul::MatmulTiming;

/// The benchmarked model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// `random:<shape>` or the path it was loaded from.
    pub source: String,
    /// Parameters (tied embeddings counted once).
    pub parameters: usize,
    /// Decoder layers.
    pub layers: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
}

/// One loss setting (DPO, or DPO + GANPO), averaged over the timed steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeReport {
    /// Mean seconds per optimizer step.
    pub step_s: f64,
    /// Fastest step.
    pub step_s_min: f64,
    /// Every timed step, in order.
    pub step_s_all: Vec<f64>,
    /// Mean seconds per step in each phase.
    pub phases_s: PhaseTimes,
    /// Step time outside the phases (metrics read back at the end of the step).
    pub other_s: f64,
    /// Tokens (`2B · T`) per second of step time.
    pub tokens_per_s: f64,
    /// Analytic GFLOP per step (see `bench::flops`).
    pub gflop_per_step: f64,
    /// Achieved GFLOP/s: `gflop_per_step / step_s`.
    pub gflops: f64,
    /// `gflops` over the measured matmul peak.
    pub fraction_of_peak: f64,
    /// Resident memory just before this mode built its models (the runtime itself, and whatever
    /// earlier modes left to the allocator), MiB.
    pub rss_before_mib: Option<f64>,
    /// Peak resident memory while this mode ran (model build included), MiB.
    pub peak_rss_mib: Option<f64>,
    /// Loss of the last timed step (a sanity check that the step computed something).
    pub loss: f64,
}

/// A whole `ganpo bench` (or `torch_step.py`) run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// `ganpo` or `torch`.
    pub tool: String,
    /// The model.
    pub model: ModelInfo,
    /// Compute dtype (`f32`).
    pub dtype: String,
    /// Preference pairs per step (`B`; the batch has `2B` rows).
    pub batch_pairs: usize,
    /// Tokens per row (`T`).
    pub seq_len: usize,
    /// Prompt tokens per row (masked out of the loss).
    pub prompt_len: usize,
    /// `2B · T`.
    pub tokens_per_step: usize,
    /// Compute threads.
    pub threads: usize,
    /// Untimed steps before the timed ones, per mode.
    pub warmup: usize,
    /// Timed steps per mode.
    pub steps: usize,
    /// The `--set key=value` training-config overrides the run used (e.g. gradient checkpointing).
    #[serde(default)]
    pub overrides: Vec<String>,
    /// Whether the modes' timed steps alternated (`--interleave`); their peak RSS is then the
    /// whole process's.
    #[serde(default)]
    pub interleaved: bool,
    /// Best f32 matmul GFLOP/s over [`matmul`](Self::matmul).
    pub matmul_peak_gflops: f64,
    /// Each timed product shape.
    pub matmul: Vec<MatmulTiming>,
    /// `dpo` and/or `ganpo` (DPO + GANPO).
    pub modes: BTreeMap<String, ModeReport>,
    /// GANPO's step time over DPO's, when both ran.
    pub ganpo_overhead: Option<f64>,
}

const PHASES: [(&str, Phase); 6] = [
    ("reference forward", Phase::ReferenceForward),
    ("policy forward", Phase::PolicyForward),
    ("log-probs + loss", Phase::LogpsAndLoss),
    ("discriminator update", Phase::DiscriminatorUpdate),
    ("backward", Phase::Backward),
    ("optimizer (+ clip)", Phase::Optimizer),
];

impl BenchReport {
    /// A readable table: one column per mode.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.model;
        let _ = writeln!(
            out,
            "{}: {} ({:.1} M parameters), {} pairs x {} tokens ({} prompt), {}, {} threads, {} warm-up + {} timed steps",
            self.tool,
            m.source,
            m.parameters as f64 / 1e6,
            self.batch_pairs,
            self.seq_len,
            self.prompt_len,
            self.dtype,
            self.threads,
            self.warmup,
            self.steps
        );
        if self.interleaved {
            let _ = writeln!(
                out,
                "timed steps interleaved across losses; peak RSS is the whole process's"
            );
        }
        if !self.overrides.is_empty() {
            let _ = writeln!(out, "overrides: {}", self.overrides.join(" "));
        }
        let shapes: Vec<String> = self
            .matmul
            .iter()
            .map(|t| format!("{} {}x{}x{}: {:.1}", t.label, t.m, t.k, t.n, t.gflops))
            .collect();
        let _ = writeln!(
            out,
            "f32 matmul peak: {:.1} GFLOP/s ({})\n",
            self.matmul_peak_gflops,
            shapes.join(", ")
        );
        let names: Vec<&String> = self.modes.keys().collect();
        let modes: Vec<&ModeReport> = self.modes.values().collect();
        let _ = write!(out, "{:<24}", "seconds per step");
        for n in &names {
            let _ = write!(out, "{n:>12}");
        }
        out.push('\n');
        let mut row = |label: &str, f: &dyn Fn(&ModeReport) -> String| {
            let _ = write!(out, "{label:<24}");
            for r in &modes {
                let _ = write!(out, "{:>12}", f(r));
            }
            out.push('\n');
        };
        for (label, phase) in PHASES {
            row(label, &|r| format!("{:.4}", r.phases_s.get(phase)));
        }
        row("other", &|r| format!("{:.4}", r.other_s));
        row("step (mean)", &|r| format!("{:.4}", r.step_s));
        row("step (min)", &|r| format!("{:.4}", r.step_s_min));
        row("tokens/s", &|r| format!("{:.1}", r.tokens_per_s));
        row("GFLOP/step", &|r| format!("{:.1}", r.gflop_per_step));
        row("GFLOP/s", &|r| format!("{:.1}", r.gflops));
        row("% of matmul peak", &|r| {
            format!("{:.1}%", 100.0 * r.fraction_of_peak)
        });
        row("peak RSS MiB", &|r| {
            r.peak_rss_mib.map_or("-".into(), |v| format!("{v:.0}"))
        });
        row("RSS before MiB", &|r| {
            r.rss_before_mib.map_or("-".into(), |v| format!("{v:.0}"))
        });
        row("loss", &|r| format!("{:.4}", r.loss));
        if let Some(o) = self.ganpo_overhead {
            let _ = writeln!(out, "\nGANPO overhead: {o:.3}x DPO's step time");
        }
        out
    }
}
