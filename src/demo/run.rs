//! `ganpo demo`: the whole pipeline on the built-in task, no downloads. Task → tokenizer → SFT
//! model (saved as a Hugging Face directory) → on-policy preference pairs (JSONL) → four arms on
//! identical data and seeds → generation-based evaluation at several temperatures → report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device};
use serde::Serialize;

pub use super::config::DemoConfig;

use super::arms::{ARMS, ArmBudget, arm_config, train_arm};
use super::claims::{ClaimLine, claims};
use super::defects::inject_defects;
use super::evaluate::{
    EVAL_SEED, EvalContext, PerPrompt, TemperatureRow, evaluate_at, prompt_ids, sample,
};
use super::overopt::{OveroptPoint, overoptimization as overoptimization_study};
use super::pairs::{PairConfig, build_pairs, write_jsonl};
use super::sft::{SftConfig, demo_model_config, init_demo_model, train_sft};
use super::task::sample_tasks;
use super::tokenizer::train_tokenizer;
use crate::judge::StructuredTaskJudge;
use crate::model::{Trainability, load_model, save_hf};
use crate::train::metrics::Metrics;
use crate::{Error, Result};

/// Pairs per optimizer step of every arm.
const BATCH: usize = 8;

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

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| Error::io(format!("creating {}", p.display()), e))
}

/// Runs the demo, calling `progress` with a line per stage.
pub fn run_demo(config: &DemoConfig, mut progress: impl FnMut(&str)) -> Result<DemoResults> {
    let started = Instant::now();
    let out = &config.output;
    mkdir(out)?;
    let device = Device::Cpu;
    // 1–2. Task, tokenizer, SFT model from scratch.
    let (tasks, defective) = inject_defects(
        &sample_tasks(1, config.sft_examples),
        config.sft_defect_rate,
        config.sft_systematic_rate,
        1,
    );
    let corpus: Vec<String> = tasks
        .iter()
        .flat_map(|t| [t.prompt.clone(), t.answer.clone()])
        .collect();
    let tok = train_tokenizer(&corpus, 400)?;
    let model = init_demo_model(demo_model_config(tok.vocab_size(), &tok), 3, &device)?;
    progress(&format!(
        "SFT: {} steps on {} task examples ({defective} with a defect)",
        config.sft_steps,
        tasks.len()
    ));
    let losses = train_sft(
        &model,
        &tok,
        &tasks,
        SftConfig {
            steps: config.sft_steps,
            batch_size: 16,
            learning_rate: 3e-3,
            seed: 0,
        },
    )?;
    let sft_dir = out.join("sft");
    save_hf(&model, &tok, None, &sft_dir)?;
    let sft_loss = (losses[0], losses[losses.len() - 1]);
    progress(&format!(
        "SFT loss {:.3} → {:.3}; model saved to {}",
        sft_loss.0,
        sft_loss.1,
        sft_dir.display()
    ));
    // 3. On-policy pairs.
    let judge = StructuredTaskJudge;
    let pc = PairConfig {
        samples: config.samples_per_prompt,
        temperature: 1.0,
        max_new_tokens: 40,
        min_gap: config.min_gap,
        label_noise: config.label_noise,
        seed: 11,
    };
    let train_pairs = build_pairs(
        &model,
        &tok,
        &judge,
        &sample_tasks(2, config.train_prompts),
        pc,
    )?;
    // Held-out pairs are never noisy: they measure what the policy learned.
    let heldout_pairs = build_pairs(
        &model,
        &tok,
        &judge,
        &sample_tasks(4, config.heldout_prompts),
        PairConfig {
            label_noise: 0.0,
            seed: 13,
            ..pc
        },
    )?;
    let data_dir = out.join("data");
    mkdir(&data_dir)?;
    let (train_path, eval_path) = (data_dir.join("train.jsonl"), data_dir.join("eval.jsonl"));
    write_jsonl(&train_pairs.records, &train_path)?;
    write_jsonl(&heldout_pairs.records, &eval_path)?;
    progress(&format!(
        "pairs: {} train ({} labels swapped) / {} held out; {} + {} prompts skipped (score gap < {})",
        train_pairs.records.len(),
        train_pairs.flipped,
        heldout_pairs.records.len(),
        train_pairs.ties_skipped,
        heldout_pairs.ties_skipped,
        config.min_gap,
    ));
    if train_pairs.records.is_empty() || heldout_pairs.records.is_empty() {
        return Err(Error::Training(
            "too few preference pairs; the SFT model's samples scored too alike".into(),
        ));
    }
    // SFT baseline rows and responses (the reference for win rates).
    let eval_tasks = sample_tasks(3, config.eval_prompts);
    let reference = load_model(&sft_dir, Trainability::Frozen, DType::F32, &device)?.model;
    let mut sft_rows = Vec::new();
    let mut sft_texts = Vec::new();
    let mut sft_per_prompt = Vec::new();
    let prompts = prompt_ids(&tok, &eval_tasks)?;
    for &t in &config.temperatures {
        let texts: Vec<String> = sample(&reference, &tok, &prompts, t, EVAL_SEED)?
            .into_iter()
            .map(|g| g.text)
            .collect();
        let e = evaluate_at(
            &reference,
            &reference,
            &tok,
            &judge,
            &eval_tasks,
            t,
            EVAL_SEED,
            &texts,
        )?;
        sft_rows.push(e.row);
        sft_per_prompt.push(e.per_prompt);
        sft_texts.push(texts);
    }
    // 4–5. Arms.
    let ctx = EvalContext {
        reference: &reference,
        tokenizer: &tok,
        judge: &judge,
        tasks: &eval_tasks,
        temperatures: &config.temperatures,
        sft_texts: &sft_texts,
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
                learning_rate: config.learning_rate,
                seed,
                logging_steps: config.logging_steps,
                dpo_beta: config.dpo_beta,
                save_steps: 0,
            };
            let text = arm_config(
                arm,
                &sft_dir,
                &train_path,
                &eval_path,
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
            &sft_dir,
            &train_path,
            &eval_path,
            &out.join("overoptimization"),
            ArmBudget {
                epochs: config.overopt_epochs,
                batch_size: BATCH,
                learning_rate: config.learning_rate,
                seed: 0,
                logging_steps: config.logging_steps,
                dpo_beta: config.dpo_beta,
                save_steps: 0,
            },
            train_pairs.records.len().div_ceil(BATCH) as u64,
            &at,
        )?;
    }
    let mut results = DemoResults {
        config: config.clone(),
        sft_loss,
        pairs: (
            train_pairs.records.len(),
            heldout_pairs.records.len(),
            train_pairs.ties_skipped + heldout_pairs.ties_skipped,
        ),
        sft: sft_rows,
        sft_per_prompt,
        arms,
        claims: Vec::new(),
        overoptimization,
        eval_prompts: eval_tasks.iter().map(|t| t.prompt.clone()).collect(),
        seconds: started.elapsed().as_secs_f64(),
    };
    results.claims = claims(&results)?;
    Ok(results)
}
