//! The evaluation report as a readable plain-text table.

use std::fmt::Write;

use super::report::EvalReport;

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

impl EvalReport {
    /// Renders the report: models and settings, the preference metrics, the latent diagnostics,
    /// and one line per temperature.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "policy     {}", self.policy);
        let _ = writeln!(s, "reference  {}", self.reference);
        let _ = writeln!(
            s,
            "date {}  judge {}  prompts {}  samples/prompt {}  max_new_tokens {}  seed {}",
            self.date,
            self.judge.as_deref().unwrap_or("none"),
            self.prompts,
            self.settings.samples,
            self.settings.max_new_tokens,
            self.settings.seed
        );
        if let Some(m) = &self.preference {
            let _ = writeln!(
                s,
                "\npreference ({} pairs, DPO beta {})",
                self.pairs, self.settings.beta
            );
            for (k, v) in m {
                let _ = writeln!(s, "  {k:<28} {v:>10.4}");
            }
        }
        if let Some(l) = &self.latent {
            let _ = writeln!(s, "\nlatent ({} pooled sequences per model)", l.sequences);
            let _ = writeln!(
                s,
                "  {:<28} {:>10.5}  (sigma^2 {:.4})",
                "mmd2", l.mmd2, l.bandwidth_sq
            );
            let _ = writeln!(
                s,
                "  {:<28} {:>10.4}  (train {:.4}, {} / {} latents)",
                "probe_accuracy",
                l.probe.test_accuracy,
                l.probe.train_accuracy,
                l.probe.train_size,
                l.probe.test_size
            );
        }
        let _ = writeln!(
            s,
            "\n{:>5} {:>7} {:>10} {:>10} {:>14} {:>7} {:>7} {:>7} {:>7}",
            "temp", "samples", "seq_kl", "token_kl", "length", "score", "struct", "ref", "win"
        );
        for r in &self.temperatures {
            let j = r.judge.as_ref();
            let _ = writeln!(
                s,
                "{:>5.2} {:>7} {:>10.4} {:>10.5} {:>14} {:>7} {:>7} {:>7} {:>7}",
                r.temperature,
                r.samples,
                r.sequence_kl,
                r.token_kl,
                format!("{:.1} ± {:.1}", r.length_mean, r.length_std),
                opt(j.map(|j| j.score_mean), 3),
                opt(j.and_then(|j| j.structure_valid_rate), 3),
                opt(j.map(|j| j.reference_score_mean), 3),
                opt(j.map(|j| j.win_rate), 3),
            );
        }
        s
    }
}
