//! A progress bar with an ETA for each long phase of the study: drawn on a terminal, and as a
//! line about every tenth of the way (with the same ETA) when stderr is a log file.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One phase's bar.
pub struct Bar {
    bar: ProgressBar,
    tty: bool,
    label: String,
    unit: &'static str,
    total: u64,
    started: Instant,
    next_line: u64,
}

impl Bar {
    /// A bar over `total` units (`unit` names them: "samples", "steps").
    pub fn new(label: impl Into<String>, total: u64, unit: &'static str) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = ProgressBar::new(total);
        let label = label.into();
        if tty {
            let template = format!(
                "{label} {{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit}, eta {{eta}} {{msg}}"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        Bar {
            bar,
            tty,
            label,
            unit,
            total,
            started: Instant::now(),
            next_line: 0,
        }
    }

    /// Moves the bar to `done` units (of which `start` were already done when it was made, e.g.
    /// by a resumed run, and do not count towards its rate).
    pub fn set(&mut self, done: u64, start: u64) {
        self.bar.set_position(done);
        if self.tty || done < self.next_line || self.total == 0 {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64();
        let rate = (done.saturating_sub(start)) as f64 / secs.max(1e-9);
        let left = self.total.saturating_sub(done) as f64 / rate.max(1e-9);
        eprintln!(
            "{}: {done}/{} {} ({:.0} s, eta {:.0} s)",
            self.label, self.total, self.unit, secs, left
        );
        self.next_line = done + (self.total / 10).max(1);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
