//! `report.md`, `results.json` and `per_prompt.json`: settings, measured time per phase, the pairs,
//! one table per temperature (every mean with its standard error), the figures, and the verdicts.

use std::fmt::Write as _;
use std::path::Path;

use ganpo::train::checkpoint_dir::write_file_atomically;
use ganpo::{Error, Result};
use serde::Serialize;

use super::figures::draw;
use super::per_prompt::write_per_prompt;
use super::run::{ArmDone, PairsPhase, StudyData};
use super::store::save_json;
use super::summary::{SummaryRow, summarize};
use super::verdicts::{VerdictLine, verdicts};

/// What `results.json` holds.
#[derive(Debug, Serialize)]
pub struct StudyResults<'a> {
    /// Settings.
    pub config: &'a super::config::StudyConfig,
    /// Pairs phase.
    pub pairs: &'a PairsPhase,
    /// Finished arms (training and evaluation times).
    pub arms: &'a [ArmDone],
    /// Reference evaluation seconds.
    pub reference_eval_seconds: f64,
    /// One row per (model, temperature).
    pub rows: Vec<SummaryRow>,
    /// Verdict lines.
    pub verdicts: Vec<VerdictLine>,
}

/// Summarizes, judges and draws the study, writing `report.md`, `results.json`,
/// `per_prompt.json` and `figures/*.png` into the output directory; returns the report's text.
pub fn write_report(data: &StudyData) -> Result<String> {
    let c = &data.config;
    let out = &c.output;
    let arms = c.arms();
    let reference = &data
        .samples
        .get("reference")
        .ok_or_else(|| Error::Config("the reference was not evaluated".into()))?[0];
    let mut rows = Vec::new();
    for model in std::iter::once("reference".to_string()).chain(arms.iter().map(|a| a.name.clone()))
    {
        let Some(seeds) = data.samples.get(&model) else {
            continue;
        };
        for (t, r) in reference.iter().enumerate() {
            let per_seed: Vec<_> = seeds.iter().map(|s| &s[t]).collect();
            rows.push(summarize(&model, &per_seed, r));
        }
    }
    let lines = verdicts(&data.samples, &arms, &c.temperatures)?;
    let figures = draw(
        &rows,
        &arms,
        &c.temperatures,
        &data.metrics_logs,
        &out.join("figures"),
    )?;
    let results = StudyResults {
        config: c,
        pairs: &data.pairs,
        arms: &data.arms,
        reference_eval_seconds: data.reference_eval_seconds,
        rows,
        verdicts: lines,
    };
    save_json(&out.join("results.json"), &results)?;
    let prompts: Vec<String> = data.eval_prompts.iter().map(|p| p.text.clone()).collect();
    write_per_prompt(out, &prompts, &data.samples)?;
    let text = markdown(data, &results, &figures, out);
    write_file_atomically(&out.join("report.md"), text.as_bytes())?;
    Ok(text)
}

fn markdown(
    data: &StudyData,
    r: &StudyResults,
    figures: &[std::path::PathBuf],
    out: &Path,
) -> String {
    let c = &data.config;
    let p = &data.pairs;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Controlled-sentiment study: {}\n",
        c.model
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    );
    let _ = writeln!(
        s,
        "Reference and initial policy: `{}`. Prompts: the first 8–12 words of Brown-corpus sentences ({:?} format), split by corpus file. Reward: VADER compound of the continuation (−1..1, the `vader_sentiment` crate). Pairs: {} samples per prompt at T = 1 (≤ {} new tokens), most vs least positive when they differ by ≥ {}. Evaluation: {} held-out prompts, one sample each at T ∈ {:?} (≤ {} new tokens), the same seeds for every model. Arms: {} epoch(s), batch {}, learning rate {}, {} seed(s).\n",
        c.model.display(),
        c.prompt_format,
        c.samples_per_prompt,
        c.pair_max_new_tokens,
        c.min_gap,
        data.eval_prompts.len(),
        c.temperatures,
        c.eval_max_new_tokens,
        c.epochs,
        c.train_batch_size,
        c.learning_rate,
        c.seeds
    );
    let _ = writeln!(
        s,
        "## Time per phase\n\n| phase | seconds |\n|---|---:|\n| pairs ({} + {} prompts × {}) | {:.0} |\n| reference evaluation | {:.0} |",
        p.train.prompts,
        p.validation.prompts,
        c.samples_per_prompt,
        p.seconds,
        r.reference_eval_seconds
    );
    let (mut train_total, mut eval_total) = (0.0, 0.0);
    for a in r.arms {
        let _ = writeln!(
            s,
            "| {} seed {}: training ({} steps{}) / evaluation | {:.0} / {:.0} |",
            a.arm,
            a.seed,
            a.training.steps,
            a.training
                .resumed_from
                .map_or(String::new(), |st| format!(", resumed at {st}")),
            a.training.seconds,
            a.eval_seconds
        );
        train_total += a.training.seconds;
        eval_total += a.eval_seconds;
    }
    let total = p.seconds + r.reference_eval_seconds + train_total + eval_total;
    let _ = writeln!(
        s,
        "| **total** (arms: {train_total:.0} training, {eval_total:.0} evaluation) | **{total:.0}** ({:.2} h) |\n",
        total / 3600.0
    );
    let peak = r
        .arms
        .iter()
        .filter_map(|a| a.training.peak_rss_mib)
        .fold(0.0, f64::max);
    let _ = writeln!(s, "Peak RSS during training: {peak:.0} MiB.\n");
    let _ = writeln!(
        s,
        "## Pairs\n\n| split | prompts | pairs | below gap | compound mean ± sd | mean max−min | neutral | chosen / rejected mean |\n|---|---:|---:|---:|---|---:|---:|---|"
    );
    for (name, st) in [("train", &p.train), ("validation", &p.validation)] {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {:.3} ± {:.3} | {:.3} | {:.1}% | {:.3} / {:.3} |",
            st.prompts,
            st.pairs,
            st.below_gap,
            st.compound_mean,
            st.compound_std,
            st.mean_range,
            100.0 * st.neutral_fraction,
            st.chosen_mean,
            st.rejected_mean
        );
    }
    let _ = writeln!(
        s,
        "\n{} prompts were skipped for having more than {} tokens.\n",
        p.long_prompts, c.max_prompt_tokens
    );
    let _ = writeln!(
        s,
        "## Results (mean ± standard error)\n\nSequence KL is the Monte-Carlo `mean [log π(y) − log π_ref(y)]` over the policy's samples (unbiased only at T = 1); token KL the exact KL of the next-token distributions along them; ref NLL the reference's negative log-likelihood per token of the samples (text quality as the reference sees it).\n"
    );
    for &t in &c.temperatures {
        let _ = writeln!(
            s,
            "### T = {t}\n\n| model | reward | win vs ref | seq KL | token KL | length | ref NLL | distinct-2 | rep-4 | EOS |\n|---|---|---|---|---|---|---|---|---|---:|"
        );
        for row in r.rows.iter().filter(|x| (x.temperature - t).abs() < 1e-9) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0}% |",
                row.model,
                row.reward.show(3),
                row.win_rate.show(3),
                row.sequence_kl.show(2),
                row.token_kl.show(4),
                row.length.show(1),
                row.ref_nll.show(3),
                row.distinct2.show(3),
                row.repetition4.show(3),
                100.0 * row.eos_rate
            );
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "## Verdicts: GANPO against its base loss\n\nPaired bootstrap over held-out prompts (and seeds), 95% intervals; a claim is supported when its whole interval lies on the predicted side of 0, not supported when it lies on the other side, else inconclusive.\n\n| GANPO arm | against | claim | T | estimate [95% CI] | verdict |\n|---|---|---|---:|---|---|"
    );
    for v in &r.verdicts {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:+.4} [{:+.4}, {:+.4}] | **{}** |",
            v.arm,
            v.base,
            v.claim,
            v.temperature,
            v.interval.estimate,
            v.interval.low,
            v.interval.high,
            v.verdict.word()
        );
    }
    let _ = writeln!(s, "\n## Figures\n");
    for f in figures {
        let rel = f.strip_prefix(out).unwrap_or(f);
        let _ = writeln!(s, "![{}]({})\n", rel.display(), rel.display());
    }
    let _ = writeln!(
        s,
        "Per-sample values (texts, rewards, log-probs, KLs) are in `eval/*/T*.json` and `arms/*/seed*/eval/T*.json`; every number above is recomputed from them."
    );
    s
}
