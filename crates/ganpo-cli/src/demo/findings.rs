//! What the demo found, in words: the conclusion and the verdict lines of the pre-registered
//! comparisons, the over-optimization study, and the per-prompt values behind them.

use std::fmt::Write as _;

use super::overopt::summarize;
use super::run::DemoResults;
use super::stats::{RESAMPLES, Verdict};

/// Every per-prompt score, validity flag and length behind the verdicts: `prompts`, then per
/// temperature (in `temperatures` order) the SFT model's and each arm and seed's lists.
pub(crate) fn per_prompt_json(r: &DemoResults) -> serde_json::Value {
    serde_json::json!({
        "prompts": r.eval_prompts,
        "temperatures": r.config.temperatures,
        "sft": r.sft_per_prompt,
        "arms": r.arms.iter().map(|a| serde_json::json!({
            "arm": a.arm,
            "seed": a.seed,
            "per_prompt": a.per_prompt,
        })).collect::<Vec<_>>(),
    })
}

/// The verdict lines as Markdown, with the conclusion paragraph above them.
pub fn verdicts_section(r: &DemoResults) -> String {
    let mut md = String::new();
    let base: Vec<_> = r.claims.iter().filter(|c| c.claim == "base").collect();
    let works = !base.is_empty() && base.iter().all(|c| c.verdict == Verdict::Supported);
    // "supported/not supported/inconclusive" line counts of one claim.
    let tally = |claim: &str| {
        [
            Verdict::Supported,
            Verdict::NotSupported,
            Verdict::Inconclusive,
        ]
        .map(|v| {
            let n = r
                .claims
                .iter()
                .filter(|c| c.claim == claim && c.verdict == v);
            n.count().to_string()
        })
        .join("/")
    };
    let _ = writeln!(md, "## Conclusion\n");
    if works {
        let _ = writeln!(
            md,
            "DPO and SimPO beat their SFT starting point at T = 0 and 0.7 (lower ends of the 95% intervals \
             above ½), so the benchmark can speak about GANPO. Of its claims, lines by verdict \
             (supported / not supported / inconclusive): head-to-head wins {}, lengths {}, \
             high temperature {}, overhead {}.\n",
            tally("1"),
            tally("2"),
            tally("3"),
            tally("4"),
        );
    } else {
        let _ = writeln!(
            md,
            "**The base methods did not clearly beat the SFT model in this run** (see the `base` lines): \
             the GANPO comparisons below cannot be read as evidence either way.\n"
        );
    }
    let _ = writeln!(
        md,
        "| claim | comparison | estimate | 95% interval | threshold | verdict |\n|---|---|---|---|---|---|"
    );
    for c in &r.claims {
        let _ = writeln!(
            md,
            "| {} | {} | {:.3} | [{:.3}, {:.3}] | {} {:.3} | {} |",
            c.claim,
            c.comparison,
            c.interval.estimate,
            c.interval.low,
            c.interval.high,
            if c.above { ">" } else { "<" },
            c.threshold,
            c.verdict.word()
        );
    }
    let _ = writeln!(
        md,
        "\nIntervals: paired bootstrap over prompts and seeds ({} resamples); a verdict is read from \
         the interval alone: supported when it lies wholly on the predicted side of the threshold, \
         not supported when wholly on the other, inconclusive otherwise. Thresholds are fixed in \
         `crates/ganpo-cli/src/demo/claims.rs`; `per_prompt.json` holds every value behind them.\n",
        RESAMPLES
    );
    md
}

/// The over-optimization study as a table and one sentence per temperature read (T = 0, 0.7).
pub fn overopt_section(r: &DemoResults) -> String {
    let mut md = String::new();
    if r.overoptimization.is_empty() {
        return md;
    }
    let _ = writeln!(
        md,
        "\n## Over-optimization\n\nThe DPO arm trained for {} epochs instead of {} (the stronger \
         setting: more epochs; same data, learning rate {:e} and β {}, seed 0), evaluated after every {} \
         epochs on the same held-out prompts.\n",
        r.config.overopt_epochs,
        r.config.epochs,
        r.config.dpo.learning_rate,
        r.config.dpo.beta,
        r.config.epochs
    );
    let _ = writeln!(
        md,
        "| epochs | temp | score | KL to SFT | win vs SFT |\n|---|---|---|---|---|"
    );
    for p in &r.overoptimization {
        let _ = writeln!(
            md,
            "| {} | {} | {:.3} | {:.3} | {:.3} |",
            p.epoch, p.temperature, p.score, p.kl_to_reference, p.win_rate_vs_sft
        );
    }
    for t in [0.0, 0.7] {
        let s = match summarize(&r.overoptimization, t) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                let _ = writeln!(md, "\nAt T = {t}: the study could not be summarized ({e}).");
                continue;
            }
        };
        let _ = writeln!(
            md,
            "\nAt T = {t}: best score {:.3} after {} epochs (KL {:.3}); after {} epochs score {:.3} \
                 (change {:+.3}, 95% interval [{:+.3}, {:+.3}]), KL {:.3}: {}.",
            s.best.0,
            s.best_epoch,
            s.best.1,
            r.config.overopt_epochs,
            s.last.0,
            s.score_change.estimate,
            s.score_change.low,
            s.score_change.high,
            s.last.1,
            if s.over_optimized {
                "KL kept growing while the score fell — over-optimization"
            } else {
                "no clear over-optimization at this temperature (the score did not fall beyond \
                     its interval, or KL did not grow)"
            }
        );
    }
    md
}
