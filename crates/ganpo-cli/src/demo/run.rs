//! `ganpo demo`: the whole pipeline on the built-in task, no downloads. Task → tokenizer → SFT
//! model (saved as a Hugging Face directory) → on-policy preference pairs (JSONL) → four arms on
//! identical data and seeds → generation-based evaluation at several temperatures → report.

use std::path::PathBuf;
use std::time::Instant;

use ganpo::Result;
use ganpo::train::metrics::Metrics;
use serde::Serialize;

pub use super::config::DemoConfig;

use super::arms::{ARMS, ArmBudget, arm_config, train_arm};
use super::claims::{ClaimLine, claims};
use super::evaluate::{EvalContext, PerPrompt, TemperatureRow};
use super::overopt::{OveroptPoint, overoptimization as overoptimization_study};
use super::prepare::{mkdir, prepare, task_seeds};
use super::task::sample_tasks;
use crate::judge::StructuredTaskJudge;

/// Pairs per optimizer step of every arm.
pub const BATCH: usize = 8;

/// Results of one arm on one seed.
#[derive(Debug, Clone, Serialize)]
pub struct ArmResult {
    /// Arm name.
    pub arm: String,
    /// Seed.
    pub seed: u64,
    /// Rows per temperature.
    pub temperatures: Vec<TemperatureRow>,
    /// Held-out preference metrics.
    pub eval: Metrics,
    /// Training wall-clock seconds.
    pub train_seconds: f64,
    /// Peak resident memory during training (MiB).
    pub peak_rss_mib: Option<f64>,
    /// The arm's `ganpo train` output directory (`metrics.jsonl`, `final/`).
    pub run_dir: PathBuf,
    /// Per-prompt results at each temperature (saved in `per_prompt.json`, not `results.json`).
    #[serde(skip)]
    pub per_prompt: Vec<PerPrompt>,
}

/// Everything the demo measured.
#[derive(Debug, Clone, Serialize)]
pub struct DemoResults {
    /// The settings.
    pub config: DemoConfig,
    /// SFT losses (first, last).
    pub sft_loss: (f64, f64),
    /// Training pairs, held-out pairs, prompts skipped (score gap below `min_gap`).
    pub pairs: (usize, usize, usize),
    /// The SFT model's own rows (the baseline).
    pub sft: Vec<TemperatureRow>,
    /// The SFT model's per-prompt results at each temperature (in `per_prompt.json`).
    #[serde(skip)]
    pub sft_per_prompt: Vec<PerPrompt>,
    /// Every arm and seed.
    pub arms: Vec<ArmResult>,
    /// The pre-registered comparisons and their verdicts.
    pub claims: Vec<ClaimLine>,
    /// The over-optimization study's points (empty when skipped).
    pub overoptimization: Vec<OveroptPoint>,
    /// The held-out evaluation prompts, in the order of every per-prompt list.
    #[serde(skip)]
    pub eval_prompts: Vec<String>,
    /// Total wall-clock seconds.
    pub seconds: f64,
}

/// Runs the demo, calling `progress` with a line per stage.
pub fn run_demo(config: &DemoConfig, mut progress: impl FnMut(&str)) -> Result<DemoResults> {
    let started = Instant::now();
    let out = &config.output;
    // 1–3. Task, tokenizer, SFT model, on-policy pairs.
    let prep = prepare(config, &mut progress)?;
    // The SFT model's answers (the reference for win rates).
    let eval_tasks = sample_tasks(task_seeds::HELDOUT, config.eval_prompts);
    let baseline = prep.baseline(&eval_tasks, &config.temperatures)?;
    let judge = StructuredTaskJudge;
    // 4–5. Arms.
    let ctx = EvalContext {
        reference: &prep.reference,
        tokenizer: &prep.tokenizer,
        judge: &judge,
        tasks: &eval_tasks,
        temperatures: &config.temperatures,
        sft_texts: &baseline.texts,
    };
    let mut arms = Vec::new();
    for seed in 0..config.seeds as u64 {
        for arm in ARMS
            .iter()
            .filter(|a| config.arms.iter().any(|n| n == a.name))
        {
            let arm_dir = out
                .join("arms")
                .join(format!("{}-seed{seed}", arm.name.replace('+', "_")));
            mkdir(&arm_dir)?;
            let budget = ArmBudget {
                epochs: config.epochs,
                batch_size: BATCH,
                seed,
                logging_steps: config.logging_steps,
                save_steps: 0,
            };
            let text = arm_config(
                arm,
                &config.knobs(arm),
                &prep.sft_dir,
                &prep.train_path,
                &prep.eval_path,
                &arm_dir.join("run"),
                &budget,
            );
            progress(&format!("training {} (seed {seed})", arm.name));
            let run = train_arm(&text, &arm_dir.join("config.toml"))?;
            let (rows, per_prompt) = ctx.evaluate_dir(&arm_dir.join("run").join("final"), &[])?;
            arms.push(ArmResult {
                arm: arm.name.to_string(),
                seed,
                temperatures: rows,
                eval: run.eval,
                train_seconds: run.seconds,
                peak_rss_mib: run.peak_rss_mib,
                run_dir: arm_dir.join("run"),
                per_prompt,
            });
        }
    }
    // 6. Over-optimization: DPO past its budget (seed 0).
    let mut overoptimization = Vec::new();
    if config.overopt_epochs > config.epochs {
        progress(&format!(
            "over-optimization study: dpo for {} epochs",
            config.overopt_epochs
        ));
        let at: Vec<usize> = (1..=config.overopt_epochs)
            .filter(|e| e % config.epochs == 0)
            .collect();
        overoptimization = overoptimization_study(
            &ctx,
            &prep.sft_dir,
            &prep.train_path,
            &prep.eval_path,
            &out.join("overoptimization"),
            config.dpo,
            ArmBudget {
                epochs: config.overopt_epochs,
                batch_size: BATCH,
                seed: 0,
                logging_steps: config.logging_steps,
                save_steps: 0,
            },
            prep.pairs.0.div_ceil(BATCH) as u64,
            &at,
        )?;
    }
    let mut results = DemoResults {
        config: config.clone(),
        sft_loss: prep.sft_loss,
        pairs: prep.pairs,
        sft: baseline.rows,
        sft_per_prompt: baseline.per_prompt,
        arms,
        claims: Vec::new(),
        overoptimization,
        eval_prompts: eval_tasks.iter().map(|t| t.prompt.clone()).collect(),
        seconds: started.elapsed().as_secs_f64(),
    };
    results.claims = claims(&results)?;
    Ok(results)
}
